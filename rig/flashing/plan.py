"""The flash plan, the same for every kind of board: skip or (erase,) write and verify, restart,
then check the runtime that came back.

1. The board already holds the image (its flash's hash over the image's region equals the
   image's own: ``FlashTarget.holds``) and no erase was asked: nothing is written. A version
   string is never enough: two builds of one version differ, and it is the bytes that ship.
2. Otherwise: erase when asked, write, then verify the region against the image.
3. Restart the board and check the runtime it reports (``check_runtime``, which reads it over
   the REPL and compares it with the pin): a board that does not come back with a REPL, or comes
   back with another runtime, is an infrastructure error of that board.

Every failure here is the rig's or the bench's, never the firmware's: ``FlashFailed`` and
``RuntimeNotMet`` are ``InfrastructureError``; the firmware is not deployed onto a board
whose runtime is in doubt.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from rig.errors import InfrastructureError
from rig.flashing.image import Image


class FlashFailed(InfrastructureError):
    """A step of flashing failed on the board (connect, erase, write, verify, restart).
    ``step`` names it; the message names the board and what the tool said."""

    def __init__(self, board: str, step: str, problem: str) -> None:
        self.board = board
        self.step = step
        super().__init__(f"{board}: flashing failed at {step}: {problem}")


class RuntimeNotMet(InfrastructureError):
    """After flashing, the board came back without a REPL or with another runtime than its pin.
    ``mismatches`` says what differs (pin and found, each named)."""

    def __init__(self, board: str, image: Image, mismatches: Sequence[str]) -> None:
        self.board = board
        self.mismatches = tuple(mismatches)
        super().__init__(
            f"{board}: after flashing {image.path}, the runtime does not meet its pin: "
            + "; ".join(mismatches)
        )


class FlashTarget(Protocol):
    """One board's flash, as the plan drives it. An ESP32 through esptool
    (``rig.flashing.esp.EspTarget``), the virtual board's runtime slot
    (``rig.flashing.virtual.VirtualTarget``). Each method raises ``FlashFailed``."""

    @property
    def board(self) -> str:
        """The board's name, for messages."""

    def holds(self, image: Image) -> bool:
        """True when the board's flash over the image's region hashes as the image does."""

    def erase(self) -> None:
        """Erase the whole flash (the filesystem with it)."""

    def write(self, image: Image) -> None: ...

    def verify(self, image: Image) -> None:
        """Raise ``FlashFailed`` unless the flash holds exactly the image now."""

    def restart(self) -> None:
        """Leave the bootloader and start the runtime."""


@dataclass(frozen=True)
class FlashOutcome:
    """What flashing did to one board: ``steps`` in order, e.g. ('compare', 'write', 'verify',
    'restart', 'runtime') or ('compare', 'skip', 'restart', 'runtime')."""

    board: str
    image: Image
    written: bool
    erased: bool
    steps: tuple[str, ...] = field(default=())
    # What the board said it runs once restarted (``RuntimeIdentity.describe()``).
    runtime: str = ""

    def summary(self) -> str:
        runs = f"; runs {self.runtime}" if self.runtime else ""
        if not self.written:
            return f"{self.board}: already holds {self.image.describe()}; nothing written{runs}"
        erased = "erased, " if self.erased else ""
        return f"{self.board}: {erased}wrote and verified {self.image.describe()}{runs}"


# What reads the runtime back once the board restarted: the mismatches against the pin, each
# a sentence naming pin and found (empty: the pin is met). It raises BoardUnreachable when the
# board gives no REPL.
RuntimeCheck = Callable[[], Sequence[str]]


def flash(
    target: FlashTarget, image: Image, check_runtime: RuntimeCheck, *, erase: bool = False
) -> FlashOutcome:
    """Run the plan of the module docstring on ``target``."""
    steps = ["compare"]
    # An erase is asked for its own sake (a filesystem to wipe): the write is never skipped then.
    written = erase or not target.holds(image)
    if written:
        if erase:
            target.erase()
            steps.append("erase")
        target.write(image)
        target.verify(image)
        steps += ["write", "verify"]
    else:
        steps.append("skip")
    target.restart()
    steps.append("restart")
    try:
        mismatches = check_runtime()
    except InfrastructureError as e:  # the port, the REPL, an answer that is not one
        raise RuntimeNotMet(target.board, image, [f"no REPL after the restart ({e})"]) from e
    steps.append("runtime")
    if mismatches:
        raise RuntimeNotMet(target.board, image, mismatches)
    return FlashOutcome(target.board, image, written=written, erased=erase, steps=tuple(steps))
