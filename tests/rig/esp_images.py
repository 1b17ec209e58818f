"""Real Espressif image files for the flashing tests, made by esptool's own image classes.

An image is built as esptool's ``elf2image`` builds one from an ELF's sections: a header with
the chip's id, two segments (data and code), the checksum over them and the appended SHA-256
digest, all written by ``ESP32FirmwareImage.save``. So every byte a check reads is one esptool
itself would write, and the checks read it back through esptool's own loader.
"""

from __future__ import annotations

import struct
from pathlib import Path

from esptool import cmds
from esptool.bin_image import ELFSection, ESP32FirmwareImage, ESP32S3FirmwareImage

# Addresses of the ESP32's internal RAM (data, then instruction RAM), as a bootloader's sections have.
DRAM = 0x3FFB0000
IRAM = 0x40080000


def esp_image(chip: str = "esp32", payload: bytes = b"MicroPython stand-in " * 8) -> bytes:
    image = ESP32S3FirmwareImage() if chip == "esp32s3" else ESP32FirmwareImage()
    image.entrypoint = IRAM
    image.segments = [
        ELFSection(b".dram0.data", DRAM, payload, 0),
        ELFSection(b".iram0.text", IRAM, bytes(range(256)), 0),
    ]
    data = image.save(None)
    assert isinstance(data, bytes)
    return data


def write_image(folder: Path, name: str = "firmware.bin", **kwargs: object) -> Path:
    path = folder / name
    path.write_bytes(esp_image(**kwargs))  # type: ignore[arg-type]
    return path


# ESP-IDF's partition table entry: magic, type, subtype, offset, size, name, flags.
def _partition(kind: int, subtype: int, offset: int, size: int, name: bytes) -> bytes:
    return struct.pack("<2sBBLL16sL", b"\xaa\x50", kind, subtype, offset, size, name.ljust(16, b"\0"), 0)


APP_OFFSET = 0x10000
# Flash-mapped addresses of the ESP32 (DROM, IROM): what makes an image an application.
DROM = 0x3F400020
IROM = 0x400D0020


def app_image(payload: bytes = b"MicroPython v1.24.0 " * 20) -> bytes:
    image = ESP32FirmwareImage()
    image.entrypoint = IROM
    image.segments = [
        ELFSection(b".flash.rodata", DROM, payload, 0),
        ELFSection(b".iram0.text", IRAM, bytes(range(256)), 0),
        ELFSection(b".flash.text", IROM, b"\x01\x02" * 200, 0),
    ]
    data = image.save(None)
    assert isinstance(data, bytes)
    return data


def merged_firmware(app: bytes | None = None) -> bytes:
    """A whole ESP32 firmware as MicroPython ships one: bootloader at 0x1000, partition table at
    0x8000 (nvs, phy_init, factory app), app at 0x10000, merged by esptool's ``merge_bin`` into
    one file to write at 0x1000."""
    table = (
        _partition(1, 2, 0x9000, 0x6000, b"nvs")
        + _partition(1, 1, 0xF000, 0x1000, b"phy_init")
        + _partition(0, 0, APP_OFFSET, 0x1F0000, b"factory")
    )
    table += b"\xff" * (0xC00 - len(table))
    merged = cmds.merge_bin(
        [(0x1000, esp_image()), (0x8000, table), (APP_OFFSET, app if app is not None else app_image())],
        chip="esp32",
        target_offset=0x1000,
    )
    assert isinstance(merged, bytes)
    return merged
