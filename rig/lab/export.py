"""The inventory's boards on this host, as a labgrid exporter configuration and as places.

``rig lab export`` runs on the host the boards hang off: every inventory board found on this
host's serial ports becomes a resource group named after the board, holding one
``USBSerialPort`` matched on the adapter's ``ID_SERIAL_SHORT`` (it follows the board from port
to port), or on its USB device's ``@ID_PATH`` when the bridge has no serial number (then it is
the USB socket that counts). ``rig lab places`` creates a place per board, matching that group
on that exporter, with tags to reserve by: ``kind=<kind>`` and ``<tag>=yes`` per inventory tag.

The functions here work on records (specs and udev properties) and are tested on fabricated
ones; reading udev is one bounded command.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping, Sequence
from typing import Any

from serial.tools.list_ports_common import ListPortInfo

from rig.discovery import BoardAmbiguous, BoardNotPresent, find_port
from rig.errors import ConfigError
from rig.inventory.spec import BoardSpec
from rig.processes import ChildProcess

UDEVADM_BOUND = 10.0
# A USB interface's suffix of a tty's ID_PATH (``...-usb-0:1.2:1.0``): the device is ``...-usb-0:1.2``.
_INTERFACE = re.compile(r":\d+\.\d+$")
_TAG_KEY = re.compile(r"[a-z][a-z0-9_]+")


def on_this_host(specs: Sequence[BoardSpec], ports: Sequence[ListPortInfo]) -> list[tuple[BoardSpec, str]]:
    """The boards of ``specs`` plugged into this host now, with their device."""
    found = []
    for spec in specs:
        if spec.traits.started_here or spec.match.url or spec.labgrid is not None:
            continue
        try:
            found.append((spec, find_port(spec, ports)))
        except (BoardNotPresent, BoardAmbiguous):
            continue
    return found


def udev_properties(device: str) -> dict[str, str]:
    """``udevadm info --query=property`` of ``device``, as a map."""
    child = ChildProcess.spawn(
        ["udevadm", "info", "--query=property", f"--name={device}"],
        name="udevadm",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = child.popen.communicate(timeout=UDEVADM_BOUND)
    except subprocess.TimeoutExpired:
        child.stop()
        raise ConfigError("udevadm", device, f"no answer within {UDEVADM_BOUND:g}s") from None
    child.stop()
    if child.popen.returncode != 0:
        raise ConfigError("udevadm", device, err.strip() or f"exit {child.popen.returncode}")
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def serial_match(spec: BoardSpec, properties: Mapping[str, str]) -> dict[str, str]:
    """How labgrid's exporter finds the board's adapter through udev."""
    serial = properties.get("ID_SERIAL_SHORT", "").strip()
    if serial:
        return {"ID_SERIAL_SHORT": serial}
    path = properties.get("ID_PATH", "").strip()
    if path:
        # '@' matches a parent device: the USB device, whichever interface the tty is on.
        return {"@ID_PATH": _INTERFACE.sub("", path)}
    raise ConfigError(
        spec.origin or "inventory",
        spec.name,
        "its adapter has neither ID_SERIAL_SHORT nor ID_PATH in udev; labgrid cannot find it again",
    )


def exporter_config(boards: Sequence[tuple[BoardSpec, Mapping[str, str]]]) -> dict[str, Any]:
    """The exporter's resources: one group per board, named after it."""
    return {
        spec.name: {"USBSerialPort": {"match": serial_match(spec, props), "speed": spec.baudrate}}
        for spec, props in boards
    }


def place_tags(spec: BoardSpec) -> dict[str, str]:
    """Tags to reserve the board's place by. Inventory tags that labgrid's tag keys cannot
    spell (upper case, '-', '.') are written with '_' and lower case."""
    tags: dict[str, str] = {"kind": spec.kind}
    for tag in sorted(spec.tags):
        key = re.sub(r"[^a-z0-9_]", "_", tag.lower())
        if _TAG_KEY.fullmatch(key):
            tags[key] = "yes"
    return tags


def place_plan(specs: Sequence[BoardSpec], exporter: str) -> list[dict[str, Any]]:
    """One place per board, named after it, matching every resource of its group on ``exporter``
    (the serial port, and a power port added to the group by hand)."""
    return [
        {"name": spec.name, "matches": [f"{exporter}/{spec.name}/*"], "tags": place_tags(spec)}
        for spec in specs
    ]
