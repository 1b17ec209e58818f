"""Which boards the gate covers, and which of them are present now."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from serial.tools.list_ports_common import ListPortInfo

from rig.board_choice import list_ports
from rig.discovery import BoardNotPresent, find_port
from rig.errors import ConfigError
from rig.inventory import BoardSpec, Inventory

PortLister = Callable[[], Sequence[ListPortInfo]]


@dataclass(frozen=True)
class PlannedBoard:
    """A board the gate covers. A missing one keeps what was searched and the ports seen,
    for the verdict line and its JUnit testcase."""

    spec: BoardSpec
    present: bool
    searched: str = ""
    seen: tuple[str, ...] = ()
    # Why the gate skips a present board (rig.history.health): "bad since ...: 3 infrastructure
    # failures in a row ...". Empty for a board in rotation.
    out_of_rotation: str = ""

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def absence(self) -> str:
        """Why the board is missing, e.g. ``vid:pid 10c4:ea60, serial_number 0001 not plugged in``."""
        if self.out_of_rotation:
            return f"out of rotation: {self.out_of_rotation}"
        return f"{self.searched} not plugged in"


def plan_boards(
    inventory: Inventory, names: Sequence[str] | None = None, lister: PortLister = list_ports
) -> list[PlannedBoard]:
    """The inventory's boards (or those of ``names``, in that order) and whether each is present
    now: a board the rig starts itself (the virtual board) always is, a USB board when
    ``find_port`` finds it among ``lister()``.

    Raises ``ConfigError`` for an unknown name, an empty plan, an entry matching several ports
    (``BoardAmbiguous``) and a present board whose ``${VAR}`` secrets are unset: each would fail
    every run on that board without saying anything about the firmware.
    """
    if names is None:
        specs = list(inventory.boards)
    else:
        specs = [inventory.get(name) for name in dict.fromkeys(names)]
    if not specs:
        raise ConfigError(str(inventory.path), "boards", "no boards to gate: the inventory lists none")
    # Listing ports can be slow (USB descriptors): only when some board is looked for on one.
    needs_ports = any(not spec.traits.started_here for spec in specs)
    ports = list(lister()) if needs_ports else []
    planned = []
    for spec in specs:
        missing = _absence(spec, ports)
        if missing is not None:
            planned.append(PlannedBoard(spec, present=False, searched=missing.searched, seen=missing.seen))
        else:
            planned.append(PlannedBoard(inventory.select(spec.name), present=True))
    return planned


def _absence(spec: BoardSpec, ports: Sequence[ListPortInfo]) -> BoardNotPresent | None:
    """None when ``spec`` is present now, else why it is not. The one place the gate asks what
    kind of board it has: a board the rig starts itself needs no port."""
    if spec.traits.started_here:
        return None
    try:
        find_port(spec, ports)
    except BoardNotPresent as e:
        return e
    return None
