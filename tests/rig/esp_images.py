"""Real Espressif image files for the flashing tests, made by esptool's own image classes.

An image is built as esptool's ``elf2image`` builds one from an ELF's sections: a header with
the chip's id, two segments (data and code), the checksum over them and the appended SHA-256
digest, all written by ``ESP32FirmwareImage.save``. So every byte a check reads is one esptool
itself would write, and the checks read it back through esptool's own loader.
"""

from __future__ import annotations

from pathlib import Path

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
