"""``rig flash`` on an ESP32 board of the inventory, as a person types it: the board found among
the serial ports (the USB record is fabricated, the one thing that cannot be real here), the
image checked before anything opens the port, esptool's real connect on the port found, and
each failure given its exit code: a bad image 2, a board that cannot be flashed 3."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from serial.tools.list_ports_common import ListPortInfo

from rig.cli import main
from rig.discovery import ports as discovery_ports
from tests.rig.esp_images import esp_image, write_image
from tests.rig.gate_inventory import write_gate_inventory


@pytest.fixture(autouse=True)
def bench(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The gate's inventory (a virtual board and bench-esp, a CP210x with serial number 0001),
    locks of our own, and bench-esp plugged in at a device path that does not exist."""
    monkeypatch.setenv("RIG_LOCK_DIR", str(tmp_path / "locks"))
    device = tmp_path / "ttyUSB0"
    record = ListPortInfo(str(device), skip_link_detection=True)
    record.vid, record.pid, record.serial_number = 0x10C4, 0xEA60, "0001"
    monkeypatch.setattr(discovery_ports, "list_serial_ports", lambda: [record])
    return device


def flash(tmp_path: Path, *args: str) -> int:
    inventory = write_gate_inventory(tmp_path)
    return main(
        ["flash", "bench-esp", "--inventory", str(inventory), "--workdir", str(tmp_path / "wd"), *args]
    )


def test_a_corrupt_image_exits_2_naming_the_file_before_the_port_is_opened(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = tmp_path / "firmware.bin"
    good = esp_image()
    image.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    assert flash(tmp_path, "--image", str(image)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"rig: error: {image}: image: corrupt: the appended SHA-256 digest"), err
    assert "Could not open" not in err  # refused offline: esptool never ran


def test_a_wrong_chip_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = write_image(tmp_path)
    assert flash(tmp_path, "--image", str(image), "--chip", "esp32c3") == 2
    assert "built for ESP32, not ESP32-C3" in capsys.readouterr().err


def test_a_board_esptool_cannot_open_exits_3_naming_port_and_step(
    tmp_path: Path, bench: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert flash(tmp_path, "--image", str(write_image(tmp_path))) == 3
    captured = capsys.readouterr()
    assert "flashing bench-esp: " in captured.out and "for esp32 at 0x1000" in captured.out
    assert captured.err.startswith("rig: error: bench-esp: flashing failed at connect: Could not open "), (
        captured.err
    )
    assert str(bench) in captured.err
    assert "Traceback" not in captured.err


def test_without_an_image_or_a_pin_exits_2_saying_how_to_give_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert flash(tmp_path) == 2
    assert "no image to flash: give --image FILE" in capsys.readouterr().err


def test_without_esptool_installed_it_says_which_extra_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # As on a machine where only the core package is installed: esptool cannot be imported (and
    # nothing of rig.flashing that needs it is loaded yet).
    for name in [m for m in sys.modules if m == "esptool" or m.startswith(("esptool.", "rig.flashing."))]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "esptool", None)
    assert flash(tmp_path, "--image", str(write_image(tmp_path))) == 2
    err = capsys.readouterr().err
    assert (
        err == "rig: error: rig flash: esptool: is not installed: pip install 'micropython-mqtt-rig[flash]'\n"
    )
