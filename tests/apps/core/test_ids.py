import subprocess
import sys
import uuid

from apps.core import ids

# Draws an id, forks, and prints the child's next id and then the parent's: a process of its own,
# as forking the test process would fork its connections and threads too.
FORKED = """
import os
from apps.core import ids

ids.uuid4()  # a block is read, most of it not handed out yet
read, write = os.pipe()
pid = os.fork()
if pid == 0:
    os.write(write, ids.uuid4().bytes)
    os._exit(0)
os.waitpid(pid, 0)
print(os.read(read, 16).hex(), ids.uuid4().hex)
"""


def test_ids_are_random_version_4_uuids_never_repeated():
    made = [ids.uuid4() for _ in range(3 * ids.BLOCK // 16)]  # across several blocks

    assert len(set(made)) == len(made)
    assert {(made_id.version, made_id.variant) for made_id in made} == {(4, uuid.RFC_4122)}


def test_a_forked_child_does_not_repeat_its_parents_ids():
    output = subprocess.run(
        [sys.executable, "-c", FORKED], capture_output=True, text=True, check=True
    ).stdout
    childs, parents = output.split()

    assert childs != parents
