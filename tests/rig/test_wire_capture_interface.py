"""A board the rig does not start, witnessed on the host's interface toward it
(``capture_interface``, ``rig.wire.link``), on real parts: a network namespace and veth pair the
test makes stand for the board's Wi-Fi, ``mosquitto_pub`` inside it for the board (with a
password in its CONNECT), a mosquitto the test starts on the host end, and tcpdump on that end
with the capture filter the inventory's values give. The wire checks judge it as they judge the
virtual board, and the kept ``wire.pcap`` holds no password. About 2 s."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rig import netns
from rig.broker.ports import accepts_connections, pick_free_ports
from rig.deadline import Deadline
from rig.evidence.secrets_audit import audit_artifacts
from rig.processes import ChildProcess
from rig.wire import capture as wire_capture
from rig.wire import checks
from rig.wire.decode import StreamDecoder
from rig.wire.link import interface_capture
from rig.wire.pcap import read_frames
from rig.wire.records import ENCRYPTED, WirePacket
from rig.wire.tcp import segment_of
from rig.wire.witness import WireWitness
from tests.rig.inner_pytest import rig_args

pytest_plugins = ["pytester"]

pytestmark = pytest.mark.integration

PASSWORD = "wifi-board-pw-41d8"
WHERE = "boards.yaml:5: boards[0].capture_interface"
START_S = 10.0


@pytest.fixture
def link() -> Iterator[netns.BoardNetwork]:
    why = netns.unavailable() or wire_capture.unavailable()
    if why is not None:
        pytest.skip(why)
    network = netns.network_for(f"wire-iface-test-{os.getpid()}")
    assert network is not None
    try:
        yield network
    finally:
        network.remove()


@pytest.fixture
def broker_port(link: netns.BoardNetwork, tmp_path: Path) -> Iterator[int]:
    """A mosquitto on the host end of the link, as a bench broker on the LAN; stopped by PID."""
    port = pick_free_ports(link.host_address, 1)[0]
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(
        f"listener {port} {link.host_address}\nallow_anonymous true\nuser root\nlog_dest stderr\n"
    )
    with (tmp_path / "broker.log").open("wb") as log:
        broker = ChildProcess.spawn(["mosquitto", "-c", str(conf)], name="mosquitto", stderr=log)
    try:
        deadline = Deadline(START_S)
        while not accepts_connections(link.host_address, port, 0.2):
            assert not deadline.expired, (
                f"mosquitto did not listen on {link.host_address}:{port} in {START_S:.0f}s"
            )
            assert broker.poll() is None, (tmp_path / "broker.log").read_text()
            time.sleep(0.05)
        yield port
    finally:
        broker.stop()


def in_namespace(link: netns.BoardNetwork, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", "netns", "exec", link.namespace, *argv],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )


@pytest.mark.parametrize("address_known", [True, False], ids=["capture_address", "no-capture_address"])
def test_a_board_behind_the_hosts_interface_is_witnessed_there(
    link: netns.BoardNetwork, broker_port: int, tmp_path: Path, address_known: bool
) -> None:
    """With ``capture_address`` the filter names the board; without, whoever talks to the
    broker's port on the interface is the board."""
    folder = tmp_path / "test"
    folder.mkdir()
    address = link.board_address if address_known else None
    capture = interface_capture(link.host_if, address, {broker_port: False}, WHERE)
    capture.start()
    try:
        wire = WireWitness(capture, folder, secrets=lambda: [PASSWORD])
        since = time.time()
        # Traffic on the same interface that is not the board's with the broker: kept out.
        knock = f"import socket; socket.socket().connect_ex(({link.host_address!r}, {broker_port + 1}))"
        assert in_namespace(link, sys.executable, "-c", knock).returncode == 0
        in_namespace(link, "ping", "-c", "1", "-W", "1", link.host_address)
        done = in_namespace(
            link, "mosquitto_pub", "-h", link.host_address, "-p", str(broker_port), "-i", "wifi-board",
            "-u", "board", "-P", PASSWORD, "-q", "1", "-t", "rig/wifi/status", "-m", "hello",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        ends = checks.connection_end(wire, since, timeout=5)
        checks.assert_goodbye(wire, ends, disconnect_readable=True)
        raw = list(read_frames(capture.files[0]))
        wire.close()
    finally:
        capture.stop()
    said = [
        (r["sender"], r["kind"])
        for r in map(json.loads, (folder / "wire.jsonl").read_text().splitlines())
        if r["record"] == "mqtt"
    ]
    assert said == [
        ("board", "CONNECT"),
        ("broker", "CONNACK"),
        ("board", "PUBLISH"),
        ("broker", "PUBACK"),
        ("board", "DISCONNECT"),
    ], said
    segments = [segment_of(f.data) for f in raw]
    assert all(s is not None and broker_port in (s.sport, s.dport) for s in segments), (
        "the capture kept traffic other than the board's with the broker (the ping, another port)"
    )
    assert PASSWORD.encode() in b"".join(f.data for f in raw), "the CONNECT carried no password to mask"
    assert PASSWORD.encode() not in (folder / "wire.pcap").read_bytes()
    assert audit_artifacts([folder], {"broker_password[wifi-board]": PASSWORD}) == []
    # Over TLS the same traffic is only "encrypted" records (the decoder is told the port is TLS).
    tls = [
        r
        for r in StreamDecoder(link.board_address, {broker_port: True}).feed(raw)
        if isinstance(r, WirePacket)
    ]
    assert tls and {r.kind for r in tls} == {ENCRYPTED}


INNER_TEST = """
import subprocess, time
from rig.wire import checks

def test_the_board_publishes(wire):
    since = time.time()
    subprocess.run(
        ["ip", "netns", "exec", NAMESPACE, "mosquitto_pub", "-h", HOST, "-p", PORT, "-i", "wifi-board",
         "-u", "board", "-P", PASSWORD, "-q", "1", "-t", "rig/wifi/status", "-m", "hello"],
        check=True, timeout=20,
    )
    checks.assert_goodbye(wire, checks.connection_end(wire, since, timeout=5), disconnect_readable=True)
    assert wire.packets("PUBLISH", "board")
"""

INVENTORY = """
boards:
  - name: wifi-board
    kind: generic
    match: {{port: /dev/rig-no-such-port}}
    # The password as the run knows it (a secret of the board's): what the rig masks.
    network: {{broker_host: {host}, broker_user: board, broker_password: "${{WIRE_TEST_BOARD_PASSWORD}}"}}
    capture_interface: {interface}
    capture_address: {address}
"""


def test_through_the_plugin_boards_yaml_names_the_interface(
    link: netns.BoardNetwork, broker_port: int, inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The inventory's capture_interface reaches the ``wire`` fixture of a run: its test judges
    on that interface and keeps wire.pcap; an interface that is not there is an error at start
    naming the file, key and value."""
    monkeypatch.setenv("WIRE_TEST_BOARD_PASSWORD", PASSWORD)
    constants = {"NAMESPACE": link.namespace, "HOST": link.host_address, "PORT": str(broker_port)}
    inner.makepyfile(
        test_wifi="".join(f"{k} = {v!r}\n" for k, v in {**constants, "PASSWORD": PASSWORD}.items())
        + INNER_TEST
    )
    args = [
        f"--rig-broker-url={link.host_address}:{broker_port}",
        "--rig-board=wifi-board",
        "-p",
        "no:cacheprovider",
    ]
    inventory = inner.path / "boards.yaml"
    inventory.write_text(
        INVENTORY.format(host=link.host_address, interface=link.host_if, address=link.board_address)
    )
    result = inner.runpytest_subprocess(*rig_args(inner, f"--rig-inventory={inventory}", *args), timeout=120)
    result.assert_outcomes(passed=1)
    kept = next((inner.path / "artifacts").rglob("wire.pcap"))
    assert kept.stat().st_size > 24 and PASSWORD.encode() not in kept.read_bytes()

    inventory.write_text(
        INVENTORY.format(host=link.host_address, interface="rig-nope0", address=link.board_address)
    )
    result = inner.runpytest_subprocess(*rig_args(inner, f"--rig-inventory={inventory}", *args), timeout=120)
    result.assert_outcomes(errors=1)
    output = result.stdout.str()
    assert f"{inventory}:8: boards[0].capture_interface: 'rig-nope0' is no network interface" in output
    assert "infrastructure failure: the rig, not the firmware, failed here" in output


def test_rig_doctor_starts_tcpdump_on_the_capture_interface(link: netns.BoardNetwork) -> None:
    """``rig doctor``'s wire-capture step tries what the suite will do: tcpdump on the interface."""
    from rig.cli import doctor
    from rig.inventory.spec import BoardSpec, CaptureSpec

    def board(interface: str) -> BoardSpec:
        capture = CaptureSpec(interface, link.board_address, origin="boards.yaml:5")
        return BoardSpec(name="wifi-board", kind="esp32", origin="boards.yaml:3", capture=capture)

    found = doctor.capture_check(board(link.host_if))
    assert found.status == doctor.OK, found
    assert f"tcpdump listens on {link.host_if} toward {link.board_address}" in found.detail, found
    missing = doctor.capture_check(board("rig-nope0"))
    assert missing.status == doctor.FAIL, missing
    assert "boards.yaml:5: capture_interface: 'rig-nope0' is no network interface" in missing.detail, missing
