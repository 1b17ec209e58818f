"""An Espressif firmware image checked offline by esptool's own image classes.

For the bootloader at the start of the file and, in a merged firmware (what MicroPython ships),
the app found through the partition table: the header's magic and segments, the checksum over
the segments, the appended SHA-256 digest and the chip id it was built for; and that the file
starts with a bootloader, not an app. A corrupt, truncated or wrong-chip image is refused naming
the file, before esptool opens a port.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

from esptool.bin_image import ESP32FirmwareImage, LoadFirmwareImage
from esptool.targets import CHIP_DEFS
from esptool.util import FatalError

from rig.errors import ConfigError
from rig.flashing.image import Image, ImageRejected, check_pin

# A MicroPython firmware .bin for an ESP32 is the bootloader, the partition table and the app
# merged into one file, written at the chip's bootloader offset (esptool's
# ``BOOTLOADER_FLASH_OFFSET``: 0x1000 on the ESP32, 0x0 on the S3 and C3). The bootloader's
# image is at its start; the app is found through the partition table, at ESP-IDF's default
# offset, in ESP-IDF's entry format (magic, type, subtype, offset, size, name, flags).
PARTITION_TABLE = 0x8000
PARTITION_TABLE_SIZE = 0xC00
PARTITION_ENTRY = struct.Struct("<2sBBLL16sL")
PARTITION_MAGIC = b"\xaa\x50"
APP_PARTITION = 0x00


def esp_chips() -> tuple[str, ...]:
    """The chip names esptool knows (``esp32``, ``esp32s3``, ...), for messages and options."""
    return tuple(CHIP_DEFS)


def load_esp_image(path: Path, chip: str, pinned_sha256: str | None = None) -> Image:
    """The Espressif firmware at ``path`` for ``chip``, checked offline by esptool's classes: for
    its bootloader and (in a merged firmware) its app, the header's magic and segments, the
    checksum over the segments, the appended SHA-256 digest and the chip id it was built for;
    and that it starts with a bootloader, not an app. Raises ``ImageRejected`` naming the file
    and what is wrong."""
    if chip not in CHIP_DEFS:
        raise ConfigError(
            "rig flash", "chip", f"{chip!r} is not a chip esptool knows ({', '.join(esp_chips())})"
        )
    sha256 = check_pin(path, pinned_sha256)
    data = path.read_bytes()
    rom = CHIP_DEFS[chip]
    bootloader = _checked(path, data, chip, "image")
    if isinstance(bootloader, ESP32FirmwareImage):
        if any(bootloader.is_flash_addr(segment.addr) for segment in bootloader.segments):
            # An application maps segments into flash; a bootloader never does. An app written
            # at the bootloader's offset leaves a board that does not boot.
            raise ImageRejected(
                path,
                "an application image, not a whole firmware (bootloader, partition table, app "
                f"merged): it would go at {rom.BOOTLOADER_FLASH_OFFSET:#x}, the bootloader's place",
            )
        _check_app(path, data, chip, rom.BOOTLOADER_FLASH_OFFSET)
    return Image(path, sha256, len(data), chip=chip, offset=rom.BOOTLOADER_FLASH_OFFSET)


def _checked(path: Path, data: bytes, chip: str, what: str) -> Any:
    """esptool's image at the start of ``data``, its checksum, digest and chip checked."""
    rom = CHIP_DEFS[chip]
    try:
        image = LoadFirmwareImage(chip, data)
    except FatalError as e:
        raise ImageRejected(path, f"not a valid {rom.CHIP_NAME} image: {e}", what) from e
    except (struct.error, ValueError, IndexError, TypeError) as e:
        # A file that ends inside a header or a segment ends inside esptool's struct.unpack.
        raise ImageRejected(
            path, f"not a valid {rom.CHIP_NAME} image: truncated ({len(data)} bytes; {e})", what
        ) from e
    if image.checksum != image.calculate_checksum():
        raise ImageRejected(
            path,
            f"corrupt: checksum {image.checksum:#04x} in the file, {image.calculate_checksum():#04x} "
            "computed over its segments",
            what,
        )
    if isinstance(image, ESP32FirmwareImage):
        if image.chip_id != rom.IMAGE_CHIP_ID:
            raise ImageRejected(path, f"built for {_chip_of(image.chip_id)}, not {rom.CHIP_NAME}", "chip")
        if image.append_digest and image.stored_digest != image.calc_digest:
            raise ImageRejected(
                path,
                f"corrupt: the appended SHA-256 digest is {image.stored_digest.hex()}, the image's "
                f"bytes give {image.calc_digest.hex()}",
                what,
            )
    return image


def _check_app(path: Path, data: bytes, chip: str, start: int) -> None:
    """The application of a merged firmware checked as its bootloader was: found through the
    partition table (ESP-IDF's default place, 0x8000) as the first app partition inside the
    file. A file that ends before the partition table holds a bootloader only: nothing more."""
    table = PARTITION_TABLE - start
    if len(data) <= table:
        return
    apps = []
    for at in range(table, min(table + PARTITION_TABLE_SIZE, len(data)) - PARTITION_ENTRY.size + 1, 32):
        magic, kind, _subtype, offset, _size, name, _flags = PARTITION_ENTRY.unpack_from(data, at)
        if magic != PARTITION_MAGIC:
            break  # 0xff: the end of the table (or its MD5 entry)
        if kind == APP_PARTITION:
            apps.append((offset, name.rstrip(b"\0").decode("ascii", "replace")))
    if not apps:
        where = f"{PARTITION_TABLE:#x}"
        if data[table : table + 2] != PARTITION_MAGIC:
            raise ImageRejected(path, f"no partition table at {where}, where a whole firmware has one")
        raise ImageRejected(path, f"the partition table at {where} has no app partition")
    offset, name = apps[0]
    if offset - start >= len(data):
        raise ImageRejected(path, f"truncated: ends before its app partition {name!r} at {offset:#x}")
    _checked(path, data[offset - start :], chip, f"app at {offset:#x}")


def _chip_of(chip_id: int) -> str:
    for rom in CHIP_DEFS.values():
        if getattr(rom, "IMAGE_CHIP_ID", None) == chip_id:
            return str(rom.CHIP_NAME)
    return f"an unknown chip (chip id {chip_id})"
