import os
import uuid

from apps.core import ids


def test_ids_are_random_version_4_uuids_never_repeated():
    made = [ids.uuid4() for _ in range(3 * ids.BLOCK // 16)]  # across several blocks

    assert len(set(made)) == len(made)
    assert {(made_id.version, made_id.variant) for made_id in made} == {(4, uuid.RFC_4122)}


def test_a_forked_child_does_not_repeat_its_parents_ids():
    ids.uuid4()  # a block is read, most of it not handed out yet
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id, to the parent
        os.write(write, ids.uuid4().bytes)
        os._exit(0)
    os.waitpid(pid, 0)
    childs = uuid.UUID(bytes=os.read(read, 16))
    os.close(read)
    os.close(write)

    assert childs != ids.uuid4()
