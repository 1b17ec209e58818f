"""Reboots: told apart by what the console showed before each boot, on console excerpts and on
the real virtual board (a crash, a soft reset, a power cut)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rig.board import Board
from rig.deadline import Deadline
from rig.health import UnrequestedReboot
from rig.health.reboots import check_reboots, classify
from rig.serial_events import parse_event
from rig.serialio.capture import Line

BOOT = '@rig {"ev": "boot", "fw": "1.0.0"}'


def lines(*texts: str) -> list[Line]:
    return [Line(i, 1000.0 + i, text) for i, text in enumerate(texts)]


def boot(**fields: str) -> str:
    return "@rig " + json.dumps({"ev": "boot", "fw": "1.0.0", **fields})


def test_a_boot_after_the_repl_was_driven_is_the_rigs() -> None:
    console = lines("KeyboardInterrupt: ", ">>> ", "MPY: soft reboot", BOOT)
    (reboot,) = classify(console)
    assert reboot.requested


def test_a_boot_after_a_deploy_through_the_raw_repl_is_the_rigs() -> None:
    console = lines("raw REPL; CTRL-B to exit", ">", "MPY: soft reboot", ">>> ", "MPY: soft reboot", BOOT)
    assert [r.requested for r in classify(console)] == [True]


def test_a_soft_reboot_banner_with_no_repl_before_it_is_a_crash() -> None:
    console = lines(
        BOOT,
        '@rig {"ev": "published", "topic": "t", "hex": "00"}',
        '@rig {"ev": "error", "type": "MemoryError", "detail": "memory allocation failed"}',
        "MPY: soft reboot",
        BOOT,
    )
    first, second = classify(console)
    assert first.requested and not second.requested
    assert "crash" in second.cause and "MemoryError" in second.cause
    with pytest.raises(UnrequestedReboot, match="rebooted 1 time") as failure:
        check_reboots(console, Path("serial.log"))
    assert "full log: serial.log" in str(failure.value)


def test_a_boot_with_neither_repl_nor_banner_is_a_power_on() -> None:
    assert [r.requested for r in classify(lines("hello", BOOT))] == [True]


def test_the_boards_own_reset_cause_decides_when_it_reports_one() -> None:
    watchdog = classify(lines("rst:0x10 (RTCWDT_RTC_RESET),boot:0x13", boot(reset_cause="WDT_RESET")))
    assert not watchdog[0].requested
    assert "WDT_RESET" in watchdog[0].cause and "RTCWDT_RTC_RESET" in watchdog[0].cause
    power = classify(lines("rst:0x1 (POWERON_RESET),boot:0x13", boot(reset_cause="PWRON_RESET")))
    assert power[0].requested


CRASHING_MAIN = (
    "import os, time\n"
    f"print({BOOT!r})\n"
    "try:\n"
    "    os.stat('crashed')\n"
    "except OSError:\n"
    "    open('crashed', 'w').close()\n"
    "    import uctypes\n"
    "    uctypes.bytearray_at(0, 4)[0] = 1  # SIGSEGV: the supervisor restarts MicroPython\n"
    "while True:\n"
    "    time.sleep(0.05)\n"
)


def is_boot(text: str) -> bool:
    event = parse_event(text)
    return event is not None and event.get("ev") == "boot"


def wait_boots(board: Board, count: int) -> list[Line]:
    def enough(_: Line) -> bool:
        # A boot line may follow the REPL's prompt on the same line (">>> @rig {...}").
        return sum(1 for ln in board.capture.lines() if is_boot(ln.text)) >= count

    assert board.capture.wait(enough, 0, Deadline(10), include_partial=False) is not None, (
        f"fewer than {count} boots: {board.capture.tail()}"
    )
    return board.capture.lines()


def test_on_the_virtual_board_a_crash_is_caught_and_the_rigs_resets_are_not(
    virtual_board: Board, flash: Path
) -> None:
    # Written once the port is open, then powered on: a boot before the port opened is not seen.
    (flash / "main.py").write_text(CRASHING_MAIN)
    virtual_board.power_cycle()
    assert [r.requested for r in classify(wait_boots(virtual_board, 2))] == [True, False]
    virtual_board.soft_reset()
    wait_boots(virtual_board, 3)
    virtual_board.power_cycle()
    reboots = classify(wait_boots(virtual_board, 4))
    assert [r.requested for r in reboots] == [True, False, True, True], [r.cause for r in reboots]
