"""The transport of a real board on a serial port of this machine, or reachable by URL."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from serial.tools.list_ports_common import ListPortInfo

from rig.board.reset import HARD_RESETS
from rig.discovery import find_port, ports, wait_for_port
from rig.discovery.known_devices import lookup
from rig.errors import BoardUnreachable
from rig.inventory.spec import BoardSpec
from rig.serialio.port import BoardPort

PortLister = Callable[[], Sequence[ListPortInfo]]


class UsbBoard:
    """A board from the inventory, found among the serial ports present.

    Lifecycle: ``start()`` finds the board's port now (raising ``BoardNotPresent`` with what was
    searched and what is plugged in); ``hard_reset()`` drives its reset line as its kind
    requires; ``rediscover()`` finds it again by serial number after a reset that made it
    re-enumerate under a new name; ``stop()`` has nothing to stop: the rig starts no process.
    """

    def __init__(self, spec: BoardSpec, lister: PortLister | None = None) -> None:
        if spec.traits.started_here:
            raise ValueError(f"{spec.name} is started by the rig, not found on a serial port")
        self.spec = spec
        self.name = spec.name
        self.kind = spec.kind
        self._lister = lister or (lambda: ports.list_serial_ports())
        self._url: str | None = None
        known = lookup(spec.match.vid, spec.match.pid)
        # A USB-serial bridge stays on the bus while the chip resets; the chip's own USB does not.
        self.reenumerates = known is not None and known.role in ("native-usb", "micropython")

    @property
    def port_url(self) -> str:
        if self._url is None:
            raise BoardUnreachable(f"{self.name}: not found yet")
        return self._url

    def start(self) -> None:
        self._url = find_port(self.spec, self._lister())

    def hard_reset(self, port: BoardPort) -> None:
        HARD_RESETS[self.spec.kind](port)

    def rediscover(self, timeout: float) -> str:
        self._url = wait_for_port(self.spec, lambda: list(self._lister()), timeout)
        return self._url

    def power_cycle(self) -> None:
        raise BoardUnreachable(f"{self.name}: a USB board is reset through its port; use Board.power_cycle()")

    def stop(self) -> None:
        self._url = None

    def process_ids(self) -> list[int]:
        return []
