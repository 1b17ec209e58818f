"""The transport of a board that is a labgrid place, on another host.

Above this transport nothing changes: capture, expect and mpremote's deploy see the place's
``NetworkSerialPort`` as one more pyserial URL, ``rfc2217://HOST:PORT?ign_set_control``, which
``Board`` opens once for the whole run (an RFC2217 open and close through ser2net costs about a
second).
"""

from __future__ import annotations

from pathlib import Path

import serial

from rig.errors import BoardUnreachable
from rig.inventory.spec import BoardSpec
from rig.lab import power
from rig.lab.client import PlaceKeeper
from rig.lab.places import AcquiredPlace, coordinator_of
from rig.serialio.port import BoardPort
from rig.settings import option, parse_seconds

# Ahead of pyserial's own handlers: its RFC2217 client refuses the write timeout BoardPort sets
# (see rig.lab.urlhandlers.protocol_rfc2217).
_HANDLERS = "rig.lab.urlhandlers"
if _HANDLERS not in serial.protocol_handler_packages:
    serial.protocol_handler_packages.insert(0, _HANDLERS)

# ``--rig-lock-timeout``'s variable and default: a busy place is waited for as long as a busy
# local board.
LOCK_TIMEOUT = option("lock-timeout")

# The places this process holds, by board name: what a place can do (power, reset output) is
# only known once it is acquired, and ``LabgridKind.no_hard_reset`` is asked by board spec.
HELD: dict[str, LabgridPlace] = {}


def default_wait() -> float:
    return parse_seconds(LOCK_TIMEOUT.read() or "", f"${LOCK_TIMEOUT.env}", LOCK_TIMEOUT.name)


class LabgridPlace:
    """A board reached through a labgrid place.

    Lifecycle: ``start()`` takes the place (reserving by tags or acquiring by name, waiting at
    most ``wait`` seconds for another client to give it up, then ``PlaceBusy`` names that
    client); ``port_url`` is its console; ``hard_reset()`` cuts power or pulses the reset output
    through labgrid where the place has one, else raises ``BoardUnreachable`` saying why;
    ``stop()`` releases the place. If the process dies instead, the keeper releases it.
    """

    kind = "labgrid"
    reenumerates = False  # ser2net's TCP port stays while the board resets behind it

    def __init__(self, spec: BoardSpec, workdir: Path, wait: float | None = None) -> None:
        if spec.labgrid is None:
            raise ValueError(f"{spec.name} is not a labgrid place")
        self.spec = spec
        self.name = spec.name
        self.coordinator = coordinator_of(spec.labgrid)
        self.wait = default_wait() if wait is None else wait
        self.log_dir = workdir
        self.keeper = PlaceKeeper(
            spec.name, self.coordinator, spec.labgrid, workdir / f"labgrid-{spec.name}.log"
        )
        self._url: str | None = None

    @property
    def place(self) -> AcquiredPlace | None:
        return self.keeper.place

    @property
    def port_url(self) -> str:
        if self._url is None:
            raise BoardUnreachable(f"{self.name}: labgrid place not taken yet")
        return self._url

    def start(self) -> None:
        place = self.keeper.take(self.wait)
        url = place.serial_url()
        if url is None:
            classes = ", ".join(sorted(r.cls for r in place.resources)) or "none"
            self.keeper.release()
            raise BoardUnreachable(
                f"{self.name}: labgrid place {place.name} has no NetworkSerialPort (its resources: {classes})"
            )
        self._url = url
        HELD[self.name] = self

    def no_hard_reset(self) -> str | None:
        place = self.place
        if place is None:
            return f"{self.name}: labgrid place not taken yet"
        return place.no_hard_reset()

    def hard_reset(self, port: BoardPort) -> None:
        place = self.place
        if place is None:
            raise BoardUnreachable(f"{self.name}: labgrid place not taken")
        power.hard_reset(self.coordinator, place, self.log_dir / f"labgrid-{self.name}-power.log")

    def rediscover(self, timeout: float) -> str:
        return self.port_url

    def stop(self) -> None:
        HELD.pop(self.name, None)
        self._url = None
        self.keeper.release()

    def process_ids(self) -> list[int]:
        pid = self.keeper.pid
        return [pid] if pid is not None else []
