"""``broker_host: auto`` with the interface named (``--rig-broker-interface``,
``$RIG_BROKER_INTERFACE``): the address chosen, and the reason given, on real interfaces.

The machine with two network cards is made for real: a network namespace of the test's own with
two interfaces, the default route on the second, as with a VPN or Docker taking the default route
away from the LAN the boards are on. Each is one end of a veth pair (this kernel has no ``dummy``
module; veth needs none), its peer in the same namespace so that both are up.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rig import netaddr
from rig.errors import ConfigError
from rig.settings import environment_names

REPO = Path(__file__).resolve().parents[2]
LAN = ("riglan0", "10.77.0.5")  # where the boards are
OTHER = ("rigvpn0", "10.88.0.7")  # where the default route goes


@pytest.fixture(autouse=True)
def no_interface_named(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("RIG_BROKER_INTERFACE", raising=False)
    yield
    netaddr.use_interface(None, "")


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=10)


@pytest.fixture
def two_cards() -> Iterator[str]:
    """A namespace with two interfaces; the default route is on the one the boards are not on."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("a network namespace needs root and iproute2")
    namespace = f"rigif-{os.getpid()}"
    _ip("netns", "add", namespace)
    try:
        for name, address in (LAN, OTHER):
            _ip("-n", namespace, "link", "add", name, "type", "veth", "peer", "name", f"{name}p")
            _ip("-n", namespace, "addr", "add", f"{address}/24", "dev", name)
            _ip("-n", namespace, "link", "set", f"{name}p", "up")
            _ip("-n", namespace, "link", "set", name, "up")
        _ip("-n", namespace, "route", "add", "default", "via", "10.88.0.1", "dev", OTHER[0])
        yield namespace
    finally:
        _ip("netns", "del", namespace)


def _in(namespace: str, argv: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in environment_names()}
    return subprocess.run(
        ["ip", "netns", "exec", namespace, *argv],
        cwd=cwd,
        env={**clean, "PYTHONPATH": str(REPO), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


CHOOSE = (
    "import json; from rig.netaddr import choose_address; c = choose_address(); "
    "print(json.dumps([c.address, c.interface, c.why]))"
)


@pytest.mark.integration  # ip netns, and Python run inside it
def test_the_named_interface_beats_the_default_route(two_cards: str, tmp_path: Path) -> None:
    guessed = _in(two_cards, [sys.executable, "-c", CHOOSE], tmp_path)
    assert guessed.returncode == 0, guessed.stderr
    address, interface, why = json.loads(guessed.stdout)
    assert (address, interface) == (OTHER[1], OTHER[0])
    assert "default route" in why and "RIG_BROKER_INTERFACE" in why  # says how to choose another

    named = _in(two_cards, [sys.executable, "-c", CHOOSE], tmp_path, RIG_BROKER_INTERFACE=LAN[0])
    assert named.returncode == 0, named.stderr
    assert json.loads(named.stdout) == [LAN[1], LAN[0], "named by $RIG_BROKER_INTERFACE"]


@pytest.mark.integration  # ip netns, and Python run inside it
def test_a_machine_without_a_route_says_what_to_set(two_cards: str, tmp_path: Path) -> None:
    _ip("-n", two_cards, "route", "del", "default")
    failed = _in(two_cards, [sys.executable, "-c", CHOOSE], tmp_path)
    assert failed.returncode != 0
    assert (
        "--rig-broker-interface" in failed.stderr
        and "cannot find this machine's LAN address" in failed.stderr
    )


USB_BOARD = """\
boards:
  - name: bench-esp
    kind: esp32
    match: {vid: 0x10c4, pid: 0xea60, serial_number: "X1"}
    network: {broker_host: auto}
"""


@pytest.mark.integration  # ip netns, and Python run inside it
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], f"{OTHER[1]} on {OTHER[0]} (the default route's interface; set --rig-broker-interface"),
        ([f"--rig-broker-interface={LAN[0]}"], f"{LAN[1]} on {LAN[0]} (named by --rig-broker-interface)"),
    ],
)
def test_the_pytest_header_says_which_address_a_usb_board_is_given_and_why(
    two_cards: str, tmp_path: Path, args: list[str], expected: str
) -> None:
    """No board is opened: the header is written before any test, and this run's test needs none."""
    (tmp_path / "boards.yaml").write_text(USB_BOARD)
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["rig.plugin"]\n')
    (tmp_path / "test_plain.py").write_text("def test_plain(): pass\n")
    run = _in(
        two_cards,
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--rig-board=bench-esp", *args],
        tmp_path,
        RIG_LOCK_DIR=str(tmp_path / "locks"),
        RIG_FIRMWARE=str(REPO / "firmware"),
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"rig: broker address for the board: {expected}" in run.stdout, run.stdout


def test_loopback_named_is_refused_naming_the_option(monkeypatch: pytest.MonkeyPatch) -> None:
    assert netaddr.interface_address("lo", "--rig-broker-interface") == "127.0.0.1"
    monkeypatch.setenv("RIG_BROKER_INTERFACE", "lo")
    with pytest.raises(ConfigError) as refused:
        netaddr.choose_address()
    assert str(refused.value).startswith(
        "$RIG_BROKER_INTERFACE: broker-interface: interface 'lo' gives 127.0.0.1"
    )


def test_an_unknown_interface_is_refused_listing_those_there_are() -> None:
    netaddr.use_interface("eth-nope", "--broker-interface")
    with pytest.raises(ConfigError) as refused:
        netaddr.choose_address()
    message = str(refused.value)
    assert message.startswith(
        "--broker-interface: broker-interface: no interface 'eth-nope' here (there are: "
    )
    assert "lo" in message


@pytest.mark.integration  # ip netns, and Python run inside it
def test_a_board_in_a_network_of_its_own_is_reached_by_its_route_whatever_is_named(
    two_cards: str, tmp_path: Path
) -> None:
    """A board on a network the rig knows the address of has one right answer: the route toward
    it (a virtual board in its namespace); the named interface is for the guess only."""
    toward = (
        "import json; from rig.netaddr import choose_address; "
        "c = choose_address('test', toward='10.77.0.9'); print(json.dumps([c.address, c.interface, c.why]))"
    )
    run = _in(two_cards, [sys.executable, "-c", toward], tmp_path, RIG_BROKER_INTERFACE=OTHER[0])
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == [LAN[1], LAN[0], "the route toward the board's 10.77.0.9"]
