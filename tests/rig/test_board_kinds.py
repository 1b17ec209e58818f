"""What differs between kinds of board is an object per kind, found through one registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from rig import netns
from rig.board.kinds import KINDS, LOOPBACK, SerialKind, VirtualKind, kind_of
from rig.board.usb import UsbBoard
from rig.board.virtual import VirtualBoard
from rig.inventory.spec import BOARD_KINDS, KIND_TRAITS, BoardSpec, NetworkSpec, UsbMatch

VIRTUAL = BoardSpec(name="virtual", kind="virtual")
ESP = BoardSpec(
    name="bench-esp",
    kind="esp32",
    match=UsbMatch(vid=0x10C4, pid=0xEA60, serial_number="X1"),
    network=NetworkSpec(broker_host="192.0.2.10"),
)


def test_every_kind_has_its_behaviour_and_its_traits() -> None:
    assert set(KINDS) == set(BOARD_KINDS) == set(KIND_TRAITS)
    for name, behaviour in KINDS.items():
        # The data and the behaviour agree on whether the rig starts the board itself.
        assert isinstance(behaviour, VirtualKind) == KIND_TRAITS[name].started_here, name


def test_a_virtual_board_is_one_flash_directory(tmp_path: Path) -> None:
    kind = kind_of(VIRTUAL)
    here, there = tmp_path / "a" / "flash-virtual", tmp_path / "b" / "flash-virtual"
    assert kind.lock_identity(VIRTUAL, here) != kind.lock_identity(VIRTUAL, there)
    assert kind.lock_identity(VIRTUAL, here) == kind.lock_identity(VIRTUAL, here)
    # A bench command's virtual board shares this machine's network: loopback.
    assert kind.broker_bind_address(VIRTUAL) == LOOPBACK
    assert kind.broker_host_for_board(VIRTUAL, "127.0.0.1") == "127.0.0.1"
    # A test session's has a network namespace of its own where this machine allows one (root):
    # the broker listens on this machine's end of the board's link, and the namespace's loopback
    # being its own, a broker on this machine's is reached over the link.
    network = netns.network_for(VIRTUAL.name)
    here_side = LOOPBACK if network is None else network.host_address
    assert kind.broker_bind_address(VIRTUAL, own_network=True) == here_side
    assert kind.broker_host_for_board(VIRTUAL, "127.0.0.1", own_network=True) == here_side
    assert kind.presence(VIRTUAL, []) == "available"
    assert kind.note_after_deploy(VIRTUAL) is not None


def test_a_usb_board_is_one_physical_thing(tmp_path: Path) -> None:
    kind = kind_of(ESP)
    assert isinstance(kind, SerialKind)
    assert kind.lock_identity(ESP, tmp_path / "a") == kind.lock_identity(ESP, tmp_path / "b") == ESP.identity
    # The broker listens where the board can reach it, and the board is told that address.
    assert kind.broker_bind_address(ESP) == "192.0.2.10"
    assert kind.broker_host_for_board(ESP, "0.0.0.0") == "192.0.2.10"
    assert kind.found_by(ESP) == "vid:pid 10c4:ea60, serial_number X1"
    assert kind.presence(ESP, []) == "absent"
    assert kind.note_after_deploy(ESP) is None


def test_each_kind_makes_its_own_transport(tmp_path: Path) -> None:
    assert isinstance(kind_of(ESP).make_transport(ESP, tmp_path, None, list), UsbBoard)
    # Not started: making the transport starts nothing.
    transport = kind_of(VIRTUAL).make_transport(VIRTUAL, tmp_path / "flash", None, list)
    assert isinstance(transport, VirtualBoard) and transport.process_ids() == []


def test_a_board_started_here_is_not_searched_for_on_serial_ports() -> None:
    with pytest.raises(ValueError, match="started by the rig"):
        UsbBoard(VIRTUAL)
