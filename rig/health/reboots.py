"""Reboots the rig did not ask for, told from the ones it did by what the console showed.

Every boot of the firmware prints a ``boot`` event. What came before it on the console, since
the previous boot, tells who reset the board:

- a REPL prompt (``>>>``, the raw REPL's ``>``): the firmware was stopped and someone drove the
  REPL, and only the rig does that (a soft reset, a deploy, a Ctrl-C restart): asked for;
- no prompt, and the board says its chip was reset by something other than power or its reset
  line (``reset_cause`` in the boot event, from ``machine.reset_cause()`` where the port has
  it: a watchdog, a panic, ``machine.reset()``): not asked for;
- no prompt but a "soft reboot" banner, on a board that reports no reset cause: the firmware
  ended by itself and the board restarted it. The virtual board's supervisor prints that banner
  whenever MicroPython's process exits (a crash), and nothing before a power-on: not asked for;
- no prompt and no banner: a power-on (a power cut, the rig's reset line): asked for. A board
  cannot cut its own power.

Judging by the console rather than by a count of the rig's own resets keeps this right for
every way a test or a fault restarts a board, including ones added later.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from rig.health.failures import UnrequestedReboot
from rig.serial_events import parse_event
from rig.serialio.capture import Line, format_line

SOFT_REBOOT = "soft reboot"
RAW_REPL_BANNER = "raw REPL; CTRL-B to exit"
# Reset causes (``machine`` constant names) that a power cut or the EN line gives: the rig's.
POWER_ON_CAUSES = frozenset({"PWRON_RESET"})
# The ESP32 ROM's own line after a chip reset, e.g. "rst:0xc (SW_CPU_RESET),boot:0x13".
ROM_RESET = re.compile(r"rst:0x[0-9a-fA-F]+ \((?P<cause>[A-Z_0-9]+)\)")
# How many console lines before an unrequested boot the failure quotes.
CONTEXT_LINES = 8


def is_repl_line(text: str) -> bool:
    return text.startswith(">>>") or text.strip() == ">" or RAW_REPL_BANNER in text


@dataclass(frozen=True)
class Reboot:
    """One boot seen on the console, and what the lines before it say about its cause."""

    line: Line
    requested: bool
    cause: str
    before: tuple[str, ...]

    def describe(self) -> str:
        context = "\n".join(f"      {text}" for text in self.before) or "      (nothing)"
        return f"{self.cause}\n    at {format_line(self.line)}\n    just before it:\n{context}"


def classify(lines: list[Line]) -> list[Reboot]:
    """Every boot among ``lines`` (consecutive capture lines), with whether the rig asked for it."""
    reboots = []
    since = 0  # index into ``lines`` of the first line after the previous boot
    for i, line in enumerate(lines):
        event = parse_event(line.text)
        if event is None or event.get("ev") != "boot":
            continue
        span = lines[since:i]
        reboots.append(_judge(line, event, span))
        since = i + 1
    return reboots


def _judge(line: Line, event: dict[str, object], span: list[Line]) -> Reboot:
    before = tuple(ln.text for ln in span[-CONTEXT_LINES:])
    texts = [ln.text for ln in span]
    if any(is_repl_line(t) for t in texts):
        return Reboot(line, True, "the rig reset it through the REPL", before)
    cause = event.get("reset_cause")
    rom = [m.group("cause") for t in texts if (m := ROM_RESET.search(t))]
    rom_note = f"; the ROM said {rom[-1]}" if rom else ""
    if isinstance(cause, str) and cause:
        if cause in POWER_ON_CAUSES:
            return Reboot(line, True, f"a power-on ({cause}{rom_note})", before)
        return Reboot(
            line, False, f"the board reset itself: machine.reset_cause() is {cause}{rom_note}", before
        )
    if any(SOFT_REBOOT in t for t in texts):
        errors = [f"{e.get('type')}: {e.get('detail')}" for t in texts if (e := _error(t)) is not None]
        why = f"; its last error event: {errors[-1]}" if errors else ""
        return Reboot(
            line,
            False,
            "the firmware ended by itself and the board restarted it (a crash: a soft reboot "
            f"banner with no REPL before it, no reset by the rig){why}{rom_note}",
            before,
        )
    return Reboot(line, True, f"a power-on{rom_note}", before)


def _error(text: str) -> dict[str, object] | None:
    event = parse_event(text)
    return event if event is not None and event.get("ev") == "error" else None


def check_reboots(lines: list[Line], log_path: Path | None) -> None:
    """Raise ``UnrequestedReboot`` naming each boot among ``lines`` the rig did not ask for."""
    unrequested = [r for r in classify(lines) if not r.requested]
    if not unrequested:
        return
    shown = "\n".join(f"  - {r.describe()}" for r in unrequested)
    where = f"\n  full log: {log_path}" if log_path else ""
    raise UnrequestedReboot(
        f"the board rebooted {len(unrequested)} time(s) during the test without the rig resetting it:\n"
        f"{shown}{where}"
    )
