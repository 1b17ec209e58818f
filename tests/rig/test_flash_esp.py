"""Flashing an ESP32 through esptool's real API, on a fake chip.

The chip is the one mock (``tests/rig/fake_esp_chip.py``): esptool's own loader classes and
``esptool.cmds`` run on top of it, so these tests show that the rig calls esptool as esptool
expects (the calls, their arguments, the order of the plan) and that what ends up in the flash
is the image. No test here can reach a real ESP32's ROM, the stub upload or the DTR/RTS reset
into the bootloader: that needs the board on a USB-serial bridge.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import pytest
from esptool.util import FatalError

from rig.flashing.esp import EspTarget, connect_over
from rig.flashing.esp_image import load_esp_image
from rig.flashing.image import Image
from rig.flashing.plan import FlashFailed, RuntimeNotMet, flash
from rig.runtime import RuntimeReadError
from tests.rig.esp_images import app_image, merged_firmware, write_image
from tests.rig.fake_esp_chip import ChipState, FakeEsp32Rom

OFFSET = 0x1000


@pytest.fixture
def chip() -> ChipState:
    return ChipState()


@pytest.fixture
def image(tmp_path: Path) -> Image:
    return load_esp_image(write_image(tmp_path), "esp32")


def target(chip: ChipState) -> EspTarget:
    return EspTarget("bench-esp", lambda: FakeEsp32Rom(chip))


def runtime_ok() -> Sequence[str]:
    return []


def on_chip(chip: ChipState, image: Image) -> bytes:
    return bytes(chip.flash[OFFSET : OFFSET + image.size])


def test_a_blank_chip_is_written_verified_and_restarted(chip: ChipState, image: Image) -> None:
    outcome = flash(target(chip), image, runtime_ok)
    assert outcome.written and outcome.steps == ("compare", "write", "verify", "restart", "runtime")
    assert on_chip(chip, image) == image.path.read_bytes()
    assert chip.hard_resets == 1
    # esptool's own sequence: compressed write, its MD5 check, then the separate verify.
    writes = [c for c in chip.commands if c.startswith(("FLASH_", "SPI_FLASH_MD5"))]
    assert writes == [
        "SPI_FLASH_MD5",  # compare: the chip's flash against the image
        "FLASH_DEFL_BEGIN",
        "FLASH_DEFL_DATA",
        "FLASH_DEFL_END",
        "SPI_FLASH_MD5",  # write_flash's own check of what it wrote
        "SPI_FLASH_MD5",  # verify_flash
    ]


def test_a_chip_that_holds_the_image_is_not_written(chip: ChipState, image: Image) -> None:
    flash(target(chip), image, runtime_ok)
    chip.commands.clear()
    outcome = flash(target(chip), image, runtime_ok)
    assert not outcome.written and outcome.steps == ("compare", "skip", "restart", "runtime")
    assert not [c for c in chip.commands if c.startswith("FLASH_")]
    assert "nothing written" in outcome.summary()


def test_one_byte_of_difference_on_the_chip_is_written_over(chip: ChipState, image: Image) -> None:
    # The hash, not a version string, decides: the same build with one flipped bit is rewritten.
    for where in (100, image.size - 1):  # inside, and the very last byte of the region
        flash(target(chip), image, runtime_ok)
        chip.flash[OFFSET + where] ^= 0x01
        outcome = flash(target(chip), image, runtime_ok)
        assert outcome.written, f"a flipped bit at {where} was taken for the image"
        assert on_chip(chip, image) == image.path.read_bytes()


def test_erase_empties_the_whole_flash_and_always_writes(chip: ChipState, image: Image) -> None:
    flash(target(chip), image, runtime_ok)
    chip.flash[0x300000:0x300004] = b"fsys"  # a filesystem far from the image
    outcome = flash(target(chip), image, runtime_ok, erase=True)
    assert outcome.erased and outcome.written
    assert outcome.steps[:3] == ("compare", "erase", "write")
    assert chip.flash[0x300000:0x300004] == b"\xff\xff\xff\xff"
    assert on_chip(chip, image) == image.path.read_bytes()


def test_a_write_the_chip_refuses_is_an_infrastructure_error_of_the_board(
    chip: ChipState, image: Image
) -> None:
    chip.fail_writes = True
    with pytest.raises(FlashFailed) as caught:
        flash(target(chip), image, runtime_ok)
    assert caught.value.step == "write"
    assert str(caught.value).startswith("bench-esp: flashing failed at write:")
    assert chip.hard_resets == 0  # no restart into a half-written image


def test_flash_that_does_not_read_back_as_the_image_fails_verify(chip: ChipState, image: Image) -> None:
    esp = target(chip)
    esp.write(image)
    chip.flash[OFFSET + 7] ^= 0xFF  # the flash lost a byte after the write
    with pytest.raises(FlashFailed, match="flashing failed at verify: Verification failed"):
        esp.verify(image)
    esp.close()


def test_a_board_without_a_repl_after_the_restart_is_an_infrastructure_error(
    chip: ChipState, image: Image
) -> None:
    def no_repl() -> Sequence[str]:
        raise RuntimeReadError("bench-esp", "no answer to the runtime query", "rst:0x10 (RTCWDT_RTC_RESET)")

    with pytest.raises(RuntimeNotMet, match="no REPL after the restart") as caught:
        flash(target(chip), image, no_repl)
    assert "bench-esp" in str(caught.value) and str(image.path) in str(caught.value)


def test_another_runtime_after_the_flash_names_pin_and_found(chip: ChipState, image: Image) -> None:
    def wrong() -> Sequence[str]:
        return ["version: pinned 1.24, runs 1.23.0"]

    with pytest.raises(RuntimeNotMet, match=r"version: pinned 1\.24, runs 1\.23\.0"):
        flash(target(chip), image, wrong)


def test_a_connection_that_fails_is_named_with_the_step(image: Image) -> None:
    def unreachable() -> FakeEsp32Rom:
        raise FatalError("Failed to connect to ESP32: No serial data received.")

    with pytest.raises(FlashFailed, match="flashing failed at connect: Failed to connect to ESP32"):
        flash(EspTarget("bench-esp", unreachable), image, runtime_ok)


def test_esptools_real_connect_on_a_missing_port_names_the_port(image: Image, tmp_path: Path) -> None:
    # connect_over calls esptool.cmds.connect_esp with the port and chip as esptool takes them:
    # esptool itself opens the port and says why it cannot.
    missing = str(tmp_path / "ttyUSB9")
    with pytest.raises(FlashFailed, match=f"flashing failed at connect: Could not open {missing}"):
        EspTarget("bench-esp", connect_over(missing, "esp32")).holds(image)


def test_an_image_replaced_after_its_check_never_reaches_the_chip(chip: ChipState, image: Image) -> None:
    image.path.write_bytes(b"\xe9" + image.path.read_bytes()[1:-1] + b"\x00")
    with pytest.raises(FlashFailed, match="changed since it was checked against its pin"):
        flash(target(chip), image, runtime_ok)
    assert hashlib.md5(on_chip(chip, image)).digest() == hashlib.md5(b"\xff" * image.size).digest()


def test_a_whole_merged_firmware_goes_over_in_many_blocks_and_reads_back(
    chip: ChipState, tmp_path: Path
) -> None:
    path = tmp_path / "ESP32_GENERIC.bin"
    # 48 KiB that do not compress, so that esptool sends several 16 KiB blocks.
    noise = b"".join(hashlib.sha256(i.to_bytes(4, "little")).digest() for i in range(1536))
    path.write_bytes(merged_firmware(app_image(noise)))
    image = load_esp_image(path, "esp32")
    assert flash(target(chip), image, runtime_ok).written
    assert chip.commands.count("FLASH_DEFL_DATA") > 1  # esptool cut it into blocks
    assert on_chip(chip, image) == path.read_bytes()
    assert not flash(target(chip), image, runtime_ok).written
