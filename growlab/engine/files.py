"""Atomic file writes: a unique temporary file in the target's folder, then a rename.

Every file growlab writes goes through `atomic_writer`, so a reader never sees half a file,
any number of processes writing the same path (a SLURM array building one cold cache) all
succeed and leave one whole file, and the file gets the mode the umask asks for (0644 with the
usual 022), not the 0600 that `tempfile.mkstemp` creates.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


def umask_mode(base: int = 0o666) -> int:
    """`base` less the process umask, as `open()` would create a file."""
    mask = os.umask(0)
    os.umask(mask)
    return base & ~mask


@contextmanager
def atomic_writer(path: Path) -> Iterator[IO[bytes]]:
    """Yield a binary file; on a clean exit it is synced and renamed onto `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, umask_mode())
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
