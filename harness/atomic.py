"""Files that appear whole or not at all: write under a temporary name, then rename.

Results CSVs, caches, per-example files, mask files, fidelity outputs and joined model chunks
are read back by later runs that trust them, so a crash or Ctrl-C mid-write must leave the old
file (or none), never a torn one. Every writer of such a file goes through `replacing`.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


@contextmanager
def replacing(target: str | Path) -> Iterator[BinaryIO]:
    """A binary file that replaces `target` when the block ends without an exception; an
    exception (a failed checksum, Ctrl-C) removes the temporary file and leaves `target` alone."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp", dir=target.parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would make a shared results file private
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextmanager
def exclusive(target: str | Path) -> Iterator[None]:
    """Hold `<target>.lock` exclusively for a read-modify-replace of `target`.

    `replacing` keeps a file whole, but two processes that each read the old file and replace
    it with their own additions lose one side's rows (two sweeps writing one results CSV).
    The lock serialises them; it is advisory (POSIX flock) and released when the process dies.
    Where flock does not exist (Windows) this is a no-op and concurrent writers are unsafe.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.with_name(target.name + ".lock"), "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
