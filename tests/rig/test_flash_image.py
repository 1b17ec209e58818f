"""Runtime images checked offline on real image files (esptool's own classes write and read
them): the pin's sha256, the header, the checksum, the appended digest and the chip; each
refusal names the file and what is wrong."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from rig.errors import ConfigError
from rig.flashing.board import image_for
from rig.flashing.esp_image import load_esp_image
from rig.flashing.image import ImageRejected, load_executable
from rig.inventory import BoardSpec
from rig.runtime import RuntimePin
from tests.rig.esp_images import APP_OFFSET, app_image, esp_image, merged_firmware, write_image

ESP = BoardSpec(name="bench-esp", kind="esp32", origin="boards.yaml:3")
VIRTUAL = BoardSpec(name="virtual", kind="virtual", origin="boards.yaml:1")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_a_real_esp32_image_passes_and_goes_to_the_bootloader_offset(tmp_path: Path) -> None:
    path = write_image(tmp_path)
    image = load_esp_image(path, "esp32", sha(path.read_bytes()))
    assert image.chip == "esp32"
    assert image.offset == 0x1000  # esptool's BOOTLOADER_FLASH_OFFSET for the ESP32
    assert image.sha256 == sha(path.read_bytes())
    assert load_esp_image(write_image(tmp_path, "s3.bin", chip="esp32s3"), "esp32s3").offset == 0


def test_another_sha256_than_the_pin_is_refused_naming_both(tmp_path: Path) -> None:
    path = write_image(tmp_path)
    other = "ab" * 32
    with pytest.raises(ImageRejected) as caught:
        load_esp_image(path, "esp32", other)
    assert str(path) in str(caught.value)
    assert other in str(caught.value) and sha(path.read_bytes()) in str(caught.value)


def test_an_image_for_another_chip_is_refused_naming_both(tmp_path: Path) -> None:
    path = write_image(tmp_path, chip="esp32s3")
    with pytest.raises(ImageRejected, match="built for ESP32-S3, not ESP32") as caught:
        load_esp_image(path, "esp32")
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda b: b[:40] + bytes([b[40] ^ 1]) + b[41:], "corrupt: checksum"),
        (lambda b: b[:-1] + bytes([b[-1] ^ 1]), "corrupt: the appended SHA-256 digest"),
        (lambda b: b[:30], "truncated"),
        (lambda b: b"", "truncated"),
        (lambda b: b"\x7fELF" + b[4:], "invalid firmware image magic"),
    ],
    ids=["segment byte", "digest byte", "cut short", "empty", "not an image"],
)
def test_a_damaged_image_is_refused_naming_the_file(tmp_path: Path, damage: object, problem: str) -> None:
    path = tmp_path / "damaged.bin"
    path.write_bytes(damage(esp_image()))  # type: ignore[operator]
    with pytest.raises(ImageRejected) as caught:
        load_esp_image(path, "esp32")
    assert str(caught.value).startswith(f"{path}: ")
    assert problem.lower() in str(caught.value).lower()


def test_an_unknown_chip_name_is_a_usage_error_listing_the_known(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"'esp33' is not a chip esptool knows.*esp32s3"):
        load_esp_image(write_image(tmp_path), "esp33")


def test_a_pinned_folder_gives_the_file_with_the_pinned_hash(tmp_path: Path) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    write_image(folder, "a-old.bin", payload=b"old runtime " * 9)
    wanted = write_image(folder, "b-new.bin", payload=b"new runtime " * 9)
    pin = RuntimePin(port="esp32", image=folder, sha256=sha(wanted.read_bytes()))
    assert image_for(ESP, pin, None).path == wanted
    with pytest.raises(ImageRejected, match="no file in this folder has the pinned sha256"):
        image_for(ESP, RuntimePin(port="esp32", image=folder, sha256="cd" * 32), None)


def test_an_image_given_on_the_command_line_must_still_be_the_pinned_one(tmp_path: Path) -> None:
    pinned = write_image(tmp_path, "pinned.bin")
    other = write_image(tmp_path, "other.bin", payload=b"another build " * 9)
    pin = RuntimePin(port="esp32", image=pinned, sha256=sha(pinned.read_bytes()))
    with pytest.raises(ImageRejected, match="not the pinned image"):
        image_for(ESP, pin, other)
    assert image_for(ESP, None, other).path == other  # no pin: the file given is the image


def test_no_image_anywhere_says_how_to_give_one() -> None:
    with pytest.raises(ConfigError, match="no image to flash: give --image FILE"):
        image_for(ESP, RuntimePin(version="1.24"), None)


def test_a_generic_board_is_refused_naming_its_tool(tmp_path: Path) -> None:
    generic = BoardSpec(name="pico", kind="generic", origin="boards.yaml:9")
    with pytest.raises(ConfigError, match="mpflash") as caught:
        image_for(generic, None, write_image(tmp_path))
    assert "boards.yaml:9" in str(caught.value)


def test_the_virtual_boards_image_is_the_pinned_executable(tmp_path: Path) -> None:
    executable = tmp_path / "micropython"
    executable.write_text("#!/bin/sh\n")
    executable.chmod(0o755)
    image = image_for(VIRTUAL, RuntimePin(version="1.28", micropython=str(executable)), None)
    assert image.path == executable and image.chip is None
    with pytest.raises(ImageRejected, match="not the pinned image"):
        load_executable(executable, "ef" * 32)


def test_a_merged_firmware_has_its_app_checked_too(tmp_path: Path) -> None:
    path = tmp_path / "ESP32_GENERIC.bin"
    path.write_bytes(merged_firmware())
    assert load_esp_image(path, "esp32").offset == 0x1000

    damaged = bytearray(merged_firmware())
    damaged[APP_OFFSET - 0x1000 + 0x40] ^= 0x01  # one byte inside the app's first segment
    path.write_bytes(damaged)
    with pytest.raises(ImageRejected, match=r"app at 0x10000: corrupt: checksum") as caught:
        load_esp_image(path, "esp32")
    assert str(caught.value).startswith(f"{path}: ")


def test_an_app_alone_is_refused_it_would_overwrite_the_bootloader(tmp_path: Path) -> None:
    path = tmp_path / "micropython.bin"  # what ESP-IDF's build leaves next to the merged firmware
    path.write_bytes(app_image())
    with pytest.raises(ImageRejected, match="an application image, not a whole firmware"):
        load_esp_image(path, "esp32")


def test_a_merged_firmware_cut_before_its_app_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cut.bin"
    path.write_bytes(merged_firmware()[: APP_OFFSET - 0x1000 - 16])
    with pytest.raises(ImageRejected, match="truncated: ends before its app partition 'factory' at 0x10000"):
        load_esp_image(path, "esp32")


def test_a_firmware_without_its_partition_table_is_refused(tmp_path: Path) -> None:
    data = bytearray(merged_firmware())
    data[0x7000 : 0x7000 + 0xC00] = b"\xff" * 0xC00
    path = tmp_path / "no-table.bin"
    path.write_bytes(data)
    with pytest.raises(ImageRejected, match="no partition table at 0x8000"):
        load_esp_image(path, "esp32")
