"""``--scan``: what is plugged in, what it probably is, and a ``boards.yaml`` entry for each port.

Pure functions over port records and inventory specs; ``render_entries`` turns the result into
YAML text a user can paste under ``boards:`` (``rig.discovery.merge`` appends the same text to
the file for ``--write``).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from serial.tools.list_ports_common import ListPortInfo

from rig.discovery.known_devices import KnownDevice, lookup
from rig.discovery.match import port_matches
from rig.discovery.ports import vid_pid
from rig.inventory.spec import BoardSpec
from rig.inventory.yamltree import load_scalar

UNKNOWN_LABEL = "unknown USB serial device"
_PLAIN = re.compile(r"[A-Za-z0-9_./][A-Za-z0-9_./:@+-]*")


@dataclass(frozen=True)
class ScanEntry:
    """One USB serial port as ``--scan`` reports it. Immutable; ``entry`` must not be modified.

    ``entry`` is a ready ``boards.yaml`` entry (name, kind, match, tags); ``matched_board`` names
    the inventory board that already matches this port, if any.
    """

    record: ListPortInfo
    label: str
    known: KnownDevice | None
    likely_micropython: bool
    matched_board: str | None
    entry: dict[str, Any]

    @property
    def device(self) -> str:
        return self.record.device

    def comment(self) -> str:
        """``/dev/ttyUSB0: Silicon Labs CP210x bridge (likely ESP32), serial 0001``, no ``#``."""
        r = self.record
        text = f"{r.device}: {self.label}{_hint(self.known)}"
        if r.serial_number:
            text += f", serial {r.serial_number}"
        elif r.location:
            text += f", no serial number, location {r.location}"
        else:
            text += ", no serial number"
        if self.matched_board:
            text += f"; already in the inventory as {self.matched_board}"
        return text


def _hint(known: KnownDevice | None) -> str:
    if known is None:
        return ""
    # MicroPython's own IDs already say so in their label; the chip's own USB says nothing more.
    if known.role == "bridge":
        return " (likely ESP32)" if known.kind == "esp32" else " (could be any board)"
    return ""


def _slug_part(text: str, limit: int = 24) -> str:
    part = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    # Serial numbers differ at the end (counters, MAC addresses), so keep the tail.
    return part[-limit:].strip("-")


def unique_name(base: str, taken: set[str]) -> str:
    """``base``, or ``base-2``, ``base-3``... the first not in ``taken``, which it joins."""
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    taken.add(name)
    return name


def _match_for(record: ListPortInfo, usb_ports: Sequence[ListPortInfo]) -> tuple[dict[str, Any], str]:
    """The ``match`` mapping for a record, and the identifier to put in its name.

    Serial number first, since it follows the board from port to port; but cheap bridges often
    share one (CP2102s answering ``0001``) or have none, and then the USB location, the physical
    socket, is what tells them apart. The device path is the last resort: it changes on replug.
    """
    match: dict[str, Any] = {"vid": f"0x{record.vid:04x}", "pid": f"0x{record.pid:04x}"}
    same_id = [p for p in usb_ports if (p.vid, p.pid) == (record.vid, record.pid)]
    serials = Counter(p.serial_number for p in same_id)
    if record.serial_number and serials[record.serial_number] == 1:
        match["serial_number"] = record.serial_number
        return match, record.serial_number
    if record.location:
        match["location"] = record.location
        return match, record.location
    if len(same_id) > 1:
        match["port"] = record.device
        return match, record.name
    if record.serial_number:
        match["serial_number"] = record.serial_number
        return match, record.serial_number
    return match, ""


def scan(ports: Sequence[ListPortInfo], inventory_specs: Iterable[BoardSpec]) -> list[ScanEntry]:
    """A ``ScanEntry`` for each port with a VID and PID (built-in UARTs are left out), in order.

    Generated names are unique among themselves and distinct from the inventory's names.
    """
    inventory = list(inventory_specs)
    specs = [s for s in inventory if not s.traits.started_here and not s.match.url]
    usb_ports = [p for p in ports if p.vid is not None and p.pid is not None]
    taken = {s.name for s in inventory}
    entries = []
    for record in usb_ports:
        known = lookup(record.vid, record.pid)
        label = known.label if known else UNKNOWN_LABEL
        if known is None and record.description and record.description != "n/a":
            label = f"{UNKNOWN_LABEL} {vid_pid(record)} ({record.description})"
        elif known is None:
            label = f"{UNKNOWN_LABEL} {vid_pid(record)}"
        matched = next((s.name for s in specs if port_matches(s.match, record)), None)
        match, ident = _match_for(record, usb_ports)
        slug = known.slug if known else "usb-serial"
        suffix = _slug_part(ident)
        name = unique_name(f"{slug}-{suffix}" if suffix else slug, taken)
        kind = known.kind if known else "generic"
        entry: dict[str, Any] = {
            "name": name,
            "kind": kind,
            "match": match,
            "tags": ["wifi"] if kind == "esp32" else [],
        }
        entries.append(
            ScanEntry(
                record=record,
                label=label,
                known=known,
                likely_micropython=known is not None and known.likely_micropython,
                matched_board=matched,
                entry=entry,
            )
        )
    return entries


def yaml_scalar(value: object) -> str:
    """A scalar as YAML that reads back as the same value: ``0001`` and ``0x10c4`` are quoted."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    if _PLAIN.fullmatch(text) and load_scalar(text) == text:
        return text
    # JSON strings are valid YAML double-quoted scalars.
    return json.dumps(text)


def entry_lines(entry: dict[str, Any], indent: str = "  ") -> list[str]:
    """The entry as one block-sequence item starting at ``indent``, without line ends."""
    lines: list[str] = []

    def emit(mapping: dict[str, Any], prefix: str, first: str) -> None:
        for i, (key, value) in enumerate(mapping.items()):
            lead = first if i == 0 else prefix
            if isinstance(value, dict):
                lines.append(f"{lead}{key}:")
                emit(value, prefix + "  ", prefix + "  ")
            elif isinstance(value, list | tuple):
                lines.append(f"{lead}{key}: [{', '.join(yaml_scalar(v) for v in value)}]")
            else:
                lines.append(f"{lead}{key}: {yaml_scalar(value)}")

    emit(entry, indent + "  ", indent + "- ")
    return lines


def render_entries(entries: Sequence[ScanEntry], *, indent: str = "  ", include_matched: bool = False) -> str:
    """YAML text to paste under ``boards:``: a comment line per port, then its entry.

    Ports that an inventory board already matches get only their comment line, unless
    ``include_matched``. The text parses on its own as a list of entries (or as nothing).
    """
    if not entries:
        return f"{indent}# no USB serial ports found\n"
    lines: list[str] = []
    for e in entries:
        lines.append(f"{indent}# {e.comment()}")
        if e.matched_board is None or include_matched:
            lines.extend(entry_lines(e.entry, indent))
    return "\n".join(lines) + "\n"
