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
