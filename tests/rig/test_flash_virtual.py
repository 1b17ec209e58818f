"""``rig flash`` on the virtual board, end to end on the real unix port: the pinned runtime put in
its slot, checked over the REPL, then the firmware deployed onto it; the write skipped when the
slot already holds the image; ``--erase`` empties the filesystem; a runtime that misses its pin
is an infrastructure error (exit 3) naming the pin and what runs."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rig.board.virtual import VirtualBoard, find_micropython
from rig.board.virtual_flash import flash_dir
from rig.board_choice import BenchBoard
from rig.errors import InfrastructureError
from rig.flashing.board import flash_board, flash_to_pin
from rig.flashing.image import load_executable
from rig.flashing.plan import RuntimeNotMet
from rig.flashing.virtual import installed_runtime
from rig.inventory import load_inventory
from rig.runtime import read_runtime

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def bench(tmp_path: Path) -> dict[str, str]:
    """An environment of this test's own: state (the virtual flash), locks, no RIG_* from outside."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIG_")}
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    env.update(RIG_STATE_DIR=str(state), RIG_LOCK_DIR=str(tmp_path / "locks"), PYTHONPATH=str(ROOT))
    return env


def inventory(tmp_path: Path, pin: str) -> Path:
    path = tmp_path / "boards.yaml"
    path.write_text(f"boards:\n  - name: virtual\n    kind: virtual\n    runtime: {{{pin}}}\n")
    return path


def rig(env: dict[str, str], tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rig.cli", *args, "--workdir", str(tmp_path / "wd")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_flash_then_runtime_then_deploy(
    tmp_path: Path, bench: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    micropython = Path(find_micropython())
    boards = inventory(tmp_path, f"port: linux, micropython: {micropython}")

    first = rig(bench, tmp_path, "flash", "virtual", "--inventory", str(boards))
    assert first.returncode == 0, first.stderr
    assert "virtual: wrote and verified" in first.stdout
    assert "runs micropython" in first.stdout and "port linux" in first.stdout  # read over the REPL
    monkeypatch.setenv("RIG_STATE_DIR", bench["RIG_STATE_DIR"])
    slot = installed_runtime(tmp_path / "wd", "virtual")
    assert slot is not None and sha256(slot) == sha256(micropython)

    again = rig(bench, tmp_path, "flash", "virtual", "--inventory", str(boards))
    assert again.returncode == 0, again.stderr
    assert "already holds" in again.stdout and "nothing written" in again.stdout

    # The firmware deployed onto the flashed runtime.
    deployed = rig(
        bench,
        tmp_path,
        "deploy",
        "virtual",
        "--inventory",
        str(boards),
        "--micropython",
        str(slot),
        "--firmware",
        str(ROOT / "firmware"),
    )
    assert deployed.returncode == 0, deployed.stderr
    filesystem = flash_dir(tmp_path / "wd", "virtual")
    assert (filesystem / "main.py").read_bytes() == (ROOT / "firmware" / "main.py").read_bytes()

    # --erase: the filesystem goes with it, and the runtime is written again.
    erased = rig(bench, tmp_path, "flash", "virtual", "--inventory", str(boards), "--erase")
    assert erased.returncode == 0, erased.stderr
    assert "erased, wrote and verified" in erased.stdout
    assert not (filesystem / "main.py").exists()
    assert sha256(slot) == sha256(micropython)


def test_a_slot_that_differs_from_the_image_is_written_over(tmp_path: Path, bench: dict[str, str]) -> None:
    micropython = Path(find_micropython())
    boards = inventory(tmp_path, f"port: linux, micropython: {micropython}")
    assert rig(bench, tmp_path, "flash", "virtual", "--inventory", str(boards)).returncode == 0
    slot = next(Path(bench["RIG_STATE_DIR"]).glob("flash/*/virtual.runtime/micropython"))
    slot.write_bytes(slot.read_bytes() + b"\n# another build\n")  # same version, other bytes
    result = rig(bench, tmp_path, "flash", "virtual", "--inventory", str(boards))
    assert result.returncode == 0, result.stderr
    assert "wrote and verified" in result.stdout
    assert sha256(slot) == sha256(micropython)


def test_a_runtime_that_misses_its_pin_is_an_infrastructure_error(
    tmp_path: Path, bench: dict[str, str]
) -> None:
    micropython = Path(find_micropython())
    boards = inventory(tmp_path, f'version: "1.19", micropython: {micropython}')
    result = rig(bench, tmp_path, "flash", "virtual", "--inventory", str(boards))
    assert result.returncode == 3, result.stdout + result.stderr
    assert result.stderr.startswith("rig: error: virtual: after flashing ")
    assert "version: pinned 1.19, runs 1." in result.stderr
    assert "Traceback" not in result.stderr


def test_an_image_that_is_not_the_pinned_one_is_refused_before_anything_runs(
    tmp_path: Path, bench: dict[str, str]
) -> None:
    other = tmp_path / "micropython-other"
    other.write_text("#!/bin/sh\nexit 1\n")
    other.chmod(0o755)
    boards = inventory(tmp_path, f"port: linux, image: {find_micropython()}, sha256: {'ab' * 32}")
    result = rig(bench, tmp_path, "flash", "virtual", "--inventory", str(boards), "--image", str(other))
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"rig: error: {other}: sha256: " in result.stderr and "not the pinned image" in result.stderr
    assert not list(Path(bench["RIG_STATE_DIR"]).glob("flash/*/virtual.runtime"))


def test_the_gates_building_block_flashes_to_the_pin_and_the_board_runs_it(
    tmp_path: Path, bench: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("RIG_STATE_DIR", "RIG_LOCK_DIR"):
        monkeypatch.setenv(name, bench[name])
    micropython = Path(find_micropython())
    spec = load_inventory(inventory(tmp_path, f"port: linux, micropython: {micropython}")).select("virtual")
    workdir = tmp_path / "session"
    outcome = flash_to_pin(spec, workdir, lock_timeout=10)
    assert outcome.written and "port linux" in outcome.runtime
    slot = installed_runtime(workdir, "virtual")
    assert slot is not None
    # The board started on what was flashed, as a run started with micropython=slot is.
    bench_board = BenchBoard(spec, workdir, purpose="test", lock_timeout=10, micropython=str(slot))
    board = bench_board.open()
    try:
        assert read_runtime(board).port == "linux"
        transport = bench_board.board.transport
        assert isinstance(transport, VirtualBoard) and transport.micropython == str(slot)
    finally:
        bench_board.close()
    assert not flash_to_pin(spec, workdir, lock_timeout=10).written


def test_a_runtime_that_gives_no_repl_is_an_infrastructure_error_naming_the_log(
    tmp_path: Path, bench: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("RIG_STATE_DIR", "RIG_LOCK_DIR"):
        monkeypatch.setenv(name, bench[name])
    # A "runtime" that boots into something that is not MicroPython: no REPL ever answers.
    broken = tmp_path / "not-micropython"
    broken.write_text("#!/bin/sh\necho 'rst:0x10 (RTCWDT_RTC_RESET),boot:0x13'\nexec sleep 60\n")
    broken.chmod(0o755)
    spec = load_inventory(inventory(tmp_path, "port: linux")).select("virtual")
    workdir = tmp_path / "session"
    with pytest.raises(RuntimeNotMet) as caught:
        flash_board(
            spec, load_executable(broken), workdir, pin=spec.runtime, lock_timeout=10, repl_timeout=1.5
        )
    message = str(caught.value)
    assert message.startswith(f"virtual: after flashing {broken}, the runtime does not meet its pin: ")
    assert "no REPL after the restart" in message and "rst:0x10" in message  # the last line seen
    assert str(workdir / "serial-virtual.log") in message
    assert isinstance(caught.value, InfrastructureError)
