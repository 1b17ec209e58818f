"""How each kind of board is hard-reset through its serial port's modem lines."""

from __future__ import annotations

import time
from typing import Protocol

from rig.errors import BoardUnreachable
from rig.serialio.port import BoardPort


class HardReset(Protocol):
    """Resets the chip with no chance for the firmware to clean up."""

    def __call__(self, port: BoardPort) -> None: ...


def esp32_hard_reset(port: BoardPort) -> None:
    """The classic ESP32 auto-reset circuit: RTS drives EN (low = in reset), DTR drives IO0
    (low at reset = ROM bootloader). Keep DTR released so the chip boots the firmware, hold RTS
    long enough for EN's RC network to discharge, then release it."""
    port.set_modem_lines(dtr=False, rts=False)
    port.set_modem_lines(dtr=False, rts=True)
    time.sleep(0.1)  # EN must stay low ~100 ms; there is no event to wait on for a capacitor
    port.set_modem_lines(dtr=False, rts=False)


def no_hard_reset(port: BoardPort) -> None:
    raise BoardUnreachable(
        f"{port.name}: a generic board has no reset line the rig can drive; power-cycle it by hand"
    )


HARD_RESETS: dict[str, HardReset] = {"esp32": esp32_hard_reset, "generic": no_hard_reset}
