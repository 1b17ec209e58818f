"""The inventory the gate's tests plan and run on: the virtual board, and one USB board
(a CP210x, serial number 0001) that is present only where a test fabricates its port."""

from __future__ import annotations

from pathlib import Path

GATE_INVENTORY = """\
boards:
  - name: virtual
    kind: virtual
  - name: bench-esp
    kind: esp32
    match: {vid: 0x10c4, pid: 0xea60, serial_number: "0001"}
"""


def write_gate_inventory(folder: Path) -> Path:
    path = folder / "boards.yaml"
    path.write_text(GATE_INVENTORY)
    return path
