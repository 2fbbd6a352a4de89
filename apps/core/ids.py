"""Random (version 4) UUIDs, as `uuid.uuid4` makes them, from random bytes read in blocks.

`uuid.uuid4` reads 16 bytes from the kernel each time, and that read lets go of the interpreter
lock: in a process whose other threads are busy (a scheduler's live announcements) each id can
then wait milliseconds to get it back. A scheduler makes two ids a fire; reading 4 KiB at a time
makes that one wait in 256 ids. The bytes are the same `os.urandom`'s, so the ids are as
unguessable.
"""

import os
import threading
import uuid

BLOCK = 4096


class _RandomBytes:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.block = b""
        self.offset = BLOCK

    def take16(self) -> bytes:
        with self.lock:
            if self.offset >= BLOCK:
                self.block, self.offset = os.urandom(BLOCK), 0
            start = self.offset
            self.offset += 16
            return self.block[start : start + 16]

    def forget(self) -> None:
        """In a forked child: never hand out the parent's bytes again."""
        self.lock = threading.Lock()
        self.offset = BLOCK


_random = _RandomBytes()
os.register_at_fork(after_in_child=_random.forget)


def uuid4() -> uuid.UUID:
    return uuid.UUID(bytes=_random.take16(), version=4)
