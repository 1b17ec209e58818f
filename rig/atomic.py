"""Writing a file so that a reader (or a run killed mid-write) sees the old file or the new one,
never half of either."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

# mkstemp creates 0600 files; a report or a record must get the mode open() would give it.
_DEFAULT_MODE = 0o666


def write_atomically(path: Path, data: bytes | str, *, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder, fsync it, and
    rename it over ``path``. Text is written as UTF-8, newlines untouched.

    The file keeps the mode of the file it replaces; a new file gets ``mode`` (default: what
    ``open()`` would give, 0666 less the umask). Parent folders are created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode is None:
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except FileNotFoundError:
            umask = os.umask(0)
            os.umask(umask)
            mode = _DEFAULT_MODE & ~umask
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
