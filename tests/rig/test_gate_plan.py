"""``rig.gate.plan_boards``: which boards the gate runs, on fabricated port records."""

from __future__ import annotations

from pathlib import Path

import pytest
from serial.tools.list_ports_common import ListPortInfo

from rig import gate
from rig.errors import ConfigError
from rig.inventory import Inventory, load_inventory
from tests.rig.gate_inventory import write_gate_inventory


def cp210x(serial: str) -> ListPortInfo:
    record = ListPortInfo("/dev/ttyUSB0", skip_link_detection=True)
    record.vid, record.pid, record.serial_number = 0x10C4, 0xEA60, serial
    return record


@pytest.fixture
def inventory(tmp_path: Path) -> Inventory:
    return load_inventory(write_gate_inventory(tmp_path), env={})


def test_a_usb_board_is_present_when_its_port_is(inventory: Inventory) -> None:
    planned = gate.plan_boards(inventory, lister=lambda: [cp210x("0001")])
    assert [(p.name, p.present) for p in planned] == [("virtual", True), ("bench-esp", True)]


def test_a_missing_usb_board_keeps_what_was_searched_and_seen(inventory: Inventory) -> None:
    planned = gate.plan_boards(inventory, lister=lambda: [cp210x("0002")])
    missing = planned[1]
    assert not missing.present
    assert missing.absence == "vid:pid 10c4:ea60, serial_number 0001 not plugged in"
    assert any("/dev/ttyUSB0" in line for line in missing.seen)


def test_a_board_the_rig_starts_needs_no_port_listing(inventory: Inventory) -> None:
    def no_listing() -> list[ListPortInfo]:
        raise AssertionError("the ports were listed for a virtual board alone")

    planned = gate.plan_boards(inventory, ["virtual"], lister=no_listing)
    assert [(p.name, p.present) for p in planned] == [("virtual", True)]


def test_an_unknown_board_is_a_config_error(inventory: Inventory) -> None:
    with pytest.raises(ConfigError, match="nonesuch"):
        gate.plan_boards(inventory, ["virtual", "nonesuch"], lister=list)
