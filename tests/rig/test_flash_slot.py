"""The virtual board's flash as the plan drives it: its runtime slot and its filesystem, on real
files (no process: the runtime check is the integration test's, test_flash_virtual.py)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from rig.flashing.image import load_executable
from rig.flashing.plan import FlashFailed, flash
from rig.flashing.virtual import VirtualTarget, runtime_slot


def runtime_ok() -> Sequence[str]:
    return []


@pytest.fixture
def target(tmp_path: Path) -> VirtualTarget:
    filesystem = tmp_path / "flash" / "virtual"
    filesystem.mkdir(parents=True, mode=0o700)
    return VirtualTarget("virtual", filesystem)


def executable(tmp_path: Path, body: str = "exit 0") -> Path:
    path = tmp_path / "micropython-build"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


def test_the_slot_sits_beside_the_filesystem(target: VirtualTarget) -> None:
    assert runtime_slot(target.flash) == target.flash.parent / "virtual.runtime" / "micropython"


def test_written_private_and_executable_then_skipped(tmp_path: Path, target: VirtualTarget) -> None:
    image = load_executable(executable(tmp_path))
    assert flash(target, image, runtime_ok).written
    assert target.slot.read_bytes() == image.path.read_bytes()
    assert target.slot.stat().st_mode & 0o777 == 0o700
    assert not flash(target, image, runtime_ok).written


def test_erase_empties_the_filesystem(tmp_path: Path, target: VirtualTarget) -> None:
    (target.flash / "lib").mkdir()
    (target.flash / "lib" / "x.py").write_text("x = 1\n")
    (target.flash / "main.py").write_text("print(1)\n")
    outcome = flash(target, load_executable(executable(tmp_path)), runtime_ok, erase=True)
    assert outcome.erased and list(target.flash.iterdir()) == []


def test_a_slot_that_does_not_read_back_fails_verify(tmp_path: Path, target: VirtualTarget) -> None:
    image = load_executable(executable(tmp_path))
    target.write(image)
    target.slot.write_text("#!/bin/sh\nexit 2\n")
    with pytest.raises(FlashFailed, match=r"virtual: flashing failed at verify: .* has sha256 "):
        target.verify(image)


def test_an_image_changed_after_its_check_fails_verify(tmp_path: Path, target: VirtualTarget) -> None:
    path = executable(tmp_path)
    image = load_executable(path)
    path.write_text("#!/bin/sh\necho swapped\n")
    with pytest.raises(FlashFailed, match="flashing failed at verify"):
        flash(target, image, runtime_ok)


def test_the_virtual_boards_flashing_imports_without_esptool(monkeypatch: pytest.MonkeyPatch) -> None:
    # The test session starts a virtual board on its flashed runtime (rig.testbed): where the
    # flash extra is not installed, that import must still work.
    for name in [m for m in sys.modules if m == "esptool" or m.startswith(("esptool.", "rig.flashing"))]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "esptool", None)
    for module in (
        "rig.flashing.virtual",
        "rig.flashing.plan",
        "rig.flashing.image",
        "rig.flashing.defaults",
    ):
        importlib.import_module(module)
    with pytest.raises(ImportError):
        importlib.import_module("rig.flashing.esp_image")
