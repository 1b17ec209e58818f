"""``capture_interface`` and ``capture_address`` in boards.yaml: what the loader accepts, and the
errors naming file, line, key and value for what it refuses; an interface that does not exist
on this machine is an infrastructure error when the capture starts (``rig.wire.link``)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from rig.errors import InfrastructureError
from rig.inventory import InventoryError, load_inventory
from rig.inventory.spec import CaptureSpec
from rig.wire.link import CaptureInterfaceError, capture_filter, check_interface

BOARD = """
boards:
  - name: bench-esp
    kind: esp32
    match: {serial_number: "0001"}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "boards.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def refused(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(InventoryError) as caught:
        load_inventory(path, env={})
    return str(caught.value)


def test_a_board_on_wifi_names_the_interface_toward_it_and_its_address(tmp_path: Path) -> None:
    path = write(tmp_path, BOARD + "    capture_interface: eth1\n    capture_address: 192.168.4.23\n")
    spec = load_inventory(path, env={}).get("bench-esp")
    assert spec.capture == CaptureSpec("eth1", "192.168.4.23", f"{path}:5", "boards[0].capture_interface")


def test_defaults_give_every_real_board_the_interface_but_not_the_virtual_one(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "defaults:\n  capture_interface: wlan0\n" + BOARD + "  - name: vb\n    kind: virtual\n",
    )
    bench = load_inventory(path, env={})
    assert bench.get("bench-esp").capture == CaptureSpec(
        "wlan0", None, f"{path}:2", "defaults.capture_interface"
    )
    assert bench.get("vb").capture is None


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (
            "    capture_interface: eth/1\n",
            "boards.yaml:5: boards[0].capture_interface: expected a network interface name (at most 15 "
            "letters, digits and '_.:@-', as `ip link` shows it), got 'eth/1'",
        ),
        ("    capture_interface: any\n", "boards[0].capture_interface: 'any' captures every interface"),
        (
            "    capture_interface: eth1\n    capture_address: board.local\n",
            "boards.yaml:6: boards[0].capture_address: expected the board's IPv4 address, got 'board.local'",
        ),
        (
            "    capture_address: 192.168.4.23\n",
            "boards[0].capture_address: capture_address filters the capture on capture_interface; "
            "give that too",
        ),
    ],
)
def test_bad_values_are_refused_naming_file_line_key_and_value(
    tmp_path: Path, lines: str, expected: str
) -> None:
    assert expected in refused(tmp_path, BOARD + lines)


def test_a_virtual_board_has_its_own_link_captured_already(tmp_path: Path) -> None:
    message = refused(tmp_path, "boards:\n  - name: vb\n    kind: virtual\n    capture_interface: eth1\n")
    assert (
        "boards.yaml:4: boards[0].capture_interface: a virtual board's own link is captured already"
        in message
    )


def test_capture_address_is_one_boards(tmp_path: Path) -> None:
    message = refused(tmp_path, "defaults:\n  capture_address: 10.0.0.2\n" + BOARD)
    assert "defaults.capture_address: capture_address is one board's address" in message


def test_an_interface_this_machine_lacks_is_an_infrastructure_error_naming_it(tmp_path: Path) -> None:
    sys_net = tmp_path / "net"
    (sys_net / "lo").mkdir(parents=True)
    (sys_net / "lo" / "type").write_text("772\n")
    (sys_net / "eth0").mkdir()
    (sys_net / "eth0" / "type").write_text("1\n")
    where = "/bench/boards.yaml:5: boards[0].capture_interface"
    with pytest.raises(CaptureInterfaceError) as caught:
        check_interface("eth1", where, sys_net)
    assert isinstance(caught.value, InfrastructureError)
    assert str(caught.value).startswith(
        f"{where}: 'eth1' is no network interface of this machine (it has: eth0, lo)"
    )
    with pytest.raises(CaptureInterfaceError, match="'lo' is not an Ethernet interface"):
        check_interface("lo", where, sys_net)
    check_interface("eth0", where, sys_net)


def test_the_capture_keeps_the_brokers_ports_and_the_boards_address() -> None:
    assert capture_filter({8883: True, 1883: False}, "192.168.4.23") == [
        "tcp and (port 1883 or port 8883) and host 192.168.4.23"
    ]
    assert capture_filter({1883: False}, None) == ["tcp and (port 1883)"]
