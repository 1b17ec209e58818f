"""Finding the inventory's boards among the serial ports present, and proposing entries for new ones.

``find_port`` / ``wait_for_port`` / ``pick_auto`` pick a board's port; ``scan`` and
``render_entries`` serve ``--scan``; ``merge_into_inventory`` serves ``--scan --write``.
"""

from rig.discovery.errors import BoardAmbiguous, BoardNotPresent, NoBoardPresent, SeveralBoardsPresent
from rig.discovery.known_devices import KNOWN_DEVICES, KnownDevice, lookup
from rig.discovery.match import find_port, pick_auto, port_matches, wait_for_port
from rig.discovery.merge import merge_into_inventory
from rig.discovery.ports import describe_port, list_serial_ports
from rig.discovery.scan import ScanEntry, render_entries, scan

__all__ = [
    "KNOWN_DEVICES",
    "BoardAmbiguous",
    "BoardNotPresent",
    "KnownDevice",
    "NoBoardPresent",
    "ScanEntry",
    "SeveralBoardsPresent",
    "describe_port",
    "find_port",
    "list_serial_ports",
    "lookup",
    "merge_into_inventory",
    "pick_auto",
    "port_matches",
    "render_entries",
    "scan",
    "wait_for_port",
]
