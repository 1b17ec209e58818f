"""Power and reset of a place's board through labgrid's own drivers (``labgrid-client power``/``io``).

labgrid's client picks the driver that fits the place's resource (``USBPowerDriver`` with
uhubctl on the exporter host for a ``NetworkUSBPowerPort``, ``NetworkPowerDriver`` for a PDU,
...). The rig runs it as a command, like the keeper, so that it never holds gRPC state itself;
the command acts as the same labgrid user and host as the keeper that holds the place.

DTR/RTS across RFC2217 are never used: each line change is a network round trip through
ser2net, too slow and too uneven for an ESP32's auto-reset circuit (a known esptool limit).
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

from rig.errors import BoardUnreachable
from rig.lab.places import AcquiredPlace
from rig.processes import ChildProcess

# One labgrid-client run: start-up (~1 s of imports), one coordinator round trip, the driver.
COMMAND_BOUND = 30.0
# How long a reset output is held asserted (labgrid's DigitalOutputResetDriver waits as long).
RESET_PULSE = 0.1


def labgrid_client() -> str:
    beside = Path(sys.executable).parent / "labgrid-client"
    if beside.exists():
        return str(beside)
    found = shutil.which("labgrid-client")
    if found is None:
        raise BoardUnreachable(f"labgrid-client is not installed next to {sys.executable} nor on PATH")
    return found


def run_client(coordinator: str, place: str, args: list[str], log_path: Path) -> None:
    """``labgrid-client -x COORDINATOR -p PLACE ARGS``, bounded; raises BoardUnreachable on failure."""
    argv = [labgrid_client(), "-x", coordinator, "-p", place, *args]
    child = ChildProcess.spawn(argv, name=f"labgrid-client {' '.join(args)}", log_path=log_path)
    exited = child.wait_exited(COMMAND_BOUND)
    code = child.stop(1.0)
    if not exited or code != 0:
        tail = log_path.read_text(errors="replace").splitlines()[-6:] if log_path.exists() else []
        shown = "".join(f"\n    {line}" for line in tail)
        what = f"did not end within {COMMAND_BOUND:g}s" if not exited else f"failed (exit {code})"
        raise BoardUnreachable(f"{' '.join(argv)} {what}:{shown}\n  full log: {log_path}")


def hard_reset(coordinator: str, place: AcquiredPlace, log_path: Path) -> None:
    """Cut the power (``power cycle``) or pulse the reset output, whichever the place has.
    labgrid's client drives the first resource of that class: a place has one board."""
    power = place.power()
    if power is not None:
        run_client(coordinator, place.name, ["power", "cycle"], log_path)
        return
    output = place.reset_output()
    if output is not None:
        # Asserted = in reset, as labgrid's DigitalOutputResetDriver drives it (an inverted
        # output is configured on the exporter, not here).
        run_client(coordinator, place.name, ["io", "high"], log_path)
        time.sleep(RESET_PULSE)  # a capacitor to discharge: there is nothing to wait on
        run_client(coordinator, place.name, ["io", "low"], log_path)
        return
    raise BoardUnreachable(place.no_hard_reset() or f"place {place.name}: no hard reset")
