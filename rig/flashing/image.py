"""Runtime images checked offline, before anything touches a board: what every kind shares.

An image is the file a runtime pin names (``boards.yaml``'s ``runtime: image:``, or
``rig flash --image``): a MicroPython ``.bin`` for an Espressif chip (checked further by
``rig.flashing.esp_image``), the ``micropython`` executable for the virtual board. Here: its
sha256 against the pin's, so that a corrupt download or a truncated copy is refused naming the
file before a single byte is written. No esptool here: the virtual board's flashing, which the
test session uses, must import without the ``flash`` extra.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from rig.errors import ConfigError


class ImageRejected(ConfigError):
    """An image that must not be flashed: unreadable, another sha256 than its pin, corrupt, or
    for another chip. Bad input (exit 2), named by file: the board is not at fault."""

    def __init__(self, path: Path, problem: str, source: str = "image") -> None:
        self.path = path
        super().__init__(str(path), source, problem)


@dataclass(frozen=True)
class Image:
    """A runtime image as read from disk: its bytes' sha256 and where it goes on the board.

    ``chip`` and ``offset`` are set for an Espressif image (esptool's chip name, the flash
    address); a virtual board's image (an executable) has neither."""

    path: Path
    sha256: str
    size: int
    chip: str | None = None
    offset: int | None = None

    def describe(self) -> str:
        where = f" for {self.chip} at {self.offset:#x}" if self.chip and self.offset is not None else ""
        return f"{self.path} ({self.size} bytes{where}, sha256 {self.sha256[:12]})"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 16), b""):
                digest.update(block)
    except OSError as e:
        raise ImageRejected(path, f"cannot be read: {e.strerror or e}") from e
    return digest.hexdigest()


def check_pin(path: Path, pinned: str | None) -> str:
    """The file's sha256, which must be ``pinned`` when a pin gives one (case and a
    ``sha256:`` prefix ignored). Refused naming the file and both hashes otherwise."""
    actual = sha256_of(path)
    if pinned is not None:
        expected = pinned.lower().removeprefix("sha256:").strip()
        if actual != expected:
            raise ImageRejected(
                path, f"sha256 is {actual}, the pin says {expected}: not the pinned image", "sha256"
            )
    return actual


def load_executable(path: Path, pinned_sha256: str | None = None) -> Image:
    """A virtual board's runtime: an executable file, checked against its pin's sha256."""
    if not path.is_file():
        raise ImageRejected(path, "is not a file")
    sha256 = check_pin(path, pinned_sha256)
    return Image(path, sha256, path.stat().st_size)
