"""The serial ports present on this machine, and how one is shown in messages."""

from __future__ import annotations

from collections.abc import Sequence

from serial.tools import list_ports
from serial.tools.list_ports_common import ListPortInfo


def list_serial_ports() -> list[ListPortInfo]:
    """Every serial port pyserial sees now, sorted by device name.

    Symlinks (``/dev/serial/by-id/...``) are left out: they name ports already listed, and listing
    them twice would make every board look ambiguous.
    """
    return sorted(list_ports.comports(include_links=False))


def vid_pid(record: ListPortInfo) -> str:
    """``10c4:ea60``, with ``----`` for a missing half (non-USB ports)."""
    vid = f"{record.vid:04x}" if record.vid is not None else "----"
    pid = f"{record.pid:04x}" if record.pid is not None else "----"
    return f"{vid}:{pid}"


def describe_port(record: ListPortInfo) -> str:
    """One line with everything a user needs to write a match for this port."""
    parts = [
        record.device,
        vid_pid(record),
        f"serial {record.serial_number}" if record.serial_number else "no serial number",
        f"location {record.location}" if record.location else "no location",
    ]
    if record.description and record.description != "n/a":
        parts.append(record.description)
    return "  ".join(parts)


def describe_ports(records: Sequence[ListPortInfo]) -> list[str]:
    """``describe_port`` for each record, or a single line saying there are none."""
    return [describe_port(r) for r in records] or ["no serial ports at all"]
