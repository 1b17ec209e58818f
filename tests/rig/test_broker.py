"""rig.broker against real brokers: real subprocesses, real sockets, paho-mqtt clients, no mocks.

Every wait is event-driven (paho callbacks set events or fill queues) and bounded.
"""

from __future__ import annotations

import os
import queue
import select
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from rig.broker import AmqttBroker, Broker, ExternalBroker, MosquittoBroker, make_broker
from rig.broker.amqtt import amqtt_available
from rig.broker.mosquitto import find_mosquitto
from rig.broker.record_log import RecordLog
from rig.broker.records import Connack, Connect, Disconnect, Ended, EndReason
from rig.deadline import Deadline
from rig.errors import BrokerError, ConfigError, WaitTimeout
from rig.evidence.broker_tap import BrokerLogTap
from rig.evidence.timeline import Timeline
from rig.processes import is_running

REPO_ROOT = Path(__file__).resolve().parents[2]

WAIT_S = 5.0
KINDS = ["mosquitto", "amqtt"]
MANAGED = {"mosquitto": MosquittoBroker, "amqtt": AmqttBroker}
Transport = Literal["tcp", "websockets"]


def _skip_unless_available(kind: str) -> None:
    if kind == "mosquitto" and find_mosquitto() is None:
        pytest.skip("mosquitto is not installed")
    if kind == "amqtt" and not amqtt_available():
        pytest.skip("amqtt is not installed")


@pytest.fixture(params=KINDS)
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Broker]:
    kind: str = request.param
    _skip_unless_available(kind)
    with make_broker(kind, tmp_path / kind) as running:
        yield running


pid_alive = is_running


class Client:
    """A paho-mqtt 2.x client whose callbacks feed events and queues the test waits on."""

    def __init__(self, broker: Broker, client_id: str, transport: Transport = "tcp") -> None:
        self.client_id = client_id
        self._broker = broker
        self._transport = transport
        self.mqtt = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, transport=transport)
        # paho retries a lost connection after 1..2 s: bounded, and fast enough for a restart test.
        self.mqtt.reconnect_delay_set(min_delay=1, max_delay=2)
        self.connects: queue.Queue[Any] = queue.Queue()
        self.subacks: queue.Queue[int] = queue.Queue()
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.mqtt.on_connect = lambda _c, _u, _f, reason, _p: self.connects.put(reason)
        self.mqtt.on_subscribe = lambda _c, _u, mid, _r, _p: self.subacks.put(mid)
        self.mqtt.on_message = lambda _c, _u, message: self.messages.put(message)

    def connect(self) -> Client:
        port = self._broker.port if self._transport == "tcp" else self._broker.ws_port
        assert port is not None
        self.mqtt.connect(self._broker.host, port, keepalive=30)
        self.mqtt.loop_start()
        self.wait_connected()
        return self

    def wait_connected(self, timeout: float = WAIT_S) -> None:
        try:
            reason = self.connects.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"{self.client_id}: no CONNACK within {timeout}s")
        assert not reason.is_failure, f"{self.client_id}: connection refused: {reason}"

    def subscribe(self, topic: str) -> None:
        _, mid = self.mqtt.subscribe(topic, qos=1)
        try:
            assert self.subacks.get(timeout=WAIT_S) == mid
        except queue.Empty:
            pytest.fail(f"{self.client_id}: no SUBACK for {topic} within {WAIT_S}s")

    def publish(self, topic: str, payload: bytes) -> None:
        self.mqtt.publish(topic, payload, qos=1).wait_for_publish(timeout=WAIT_S)

    def expect(self, topic: str, payload: bytes) -> None:
        try:
            message = self.messages.get(timeout=WAIT_S)
        except queue.Empty:
            pytest.fail(f"{self.client_id}: nothing received on {topic} within {WAIT_S}s")
        assert (message.topic, message.payload) == (topic, payload)

    def disconnect(self) -> None:
        self.mqtt.disconnect()
        self.mqtt.loop_stop()


def round_trip(broker: Broker, transport: Transport, tag: str) -> None:
    sub = Client(broker, f"sub-{tag}", transport).connect()
    pub = Client(broker, f"pub-{tag}", transport).connect()
    try:
        sub.subscribe(f"rig/{tag}")
        pub.publish(f"rig/{tag}", b"hello " + tag.encode())
        sub.expect(f"rig/{tag}", b"hello " + tag.encode())
    finally:
        pub.disconnect()
        sub.disconnect()


# -- raw MQTT 3.1.1, for a client that misbehaves on purpose ----------------------------------------


def _string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("!H", len(data)) + data


def _packet(first_byte: int, body: bytes) -> bytes:
    assert len(body) < 128  # one-byte remaining length is all these tests need
    return bytes([first_byte, len(body)]) + body


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, "broker closed the connection"
        data += chunk
    return data


def raw_connect(broker: Broker, client_id: str, will_topic: str, will: bytes) -> socket.socket:
    sock = socket.create_connection((broker.host, broker.port), timeout=WAIT_S)
    flags = 0x02 | 0x04  # clean session, will flag (QoS 0, not retained)
    body = _string("MQTT") + bytes([4, flags]) + struct.pack("!H", 30)
    body += _string(client_id) + _string(will_topic) + struct.pack("!H", len(will)) + will
    sock.sendall(_packet(0x10, body))
    assert _recv_exactly(sock, 4) == b"\x20\x02\x00\x00", "CONNECT refused"
    return sock


def raw_subscribe(sock: socket.socket, topic: str) -> None:
    sock.sendall(_packet(0x82, struct.pack("!H", 1) + _string(topic) + b"\x00"))
    assert _recv_exactly(sock, 5)[:1] == b"\x90", "no SUBACK"


# -- lifecycle ------------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["tcp", "websockets"])
def test_publish_subscribe_round_trip(broker: Broker, transport: Transport) -> None:
    round_trip(broker, transport, f"{broker.kind}-{transport}")


def test_restart_keeps_ports_and_clients_reconnect(broker: Broker) -> None:
    port, ws_port, old_pid = broker.port, broker.ws_port, broker.pid
    assert old_pid is not None
    survivor = Client(broker, "survivor").connect()
    try:
        broker.restart()
        assert (broker.port, broker.ws_port) == (port, ws_port)
        assert broker.pid not in (None, old_pid)
        assert not pid_alive(old_pid)
        # The client that was connected during the restart comes back on its own.
        survivor.wait_connected(timeout=10.0)
    finally:
        survivor.disconnect()
    round_trip(broker, "tcp", "after-restart-tcp")
    round_trip(broker, "websockets", "after-restart-ws")


def test_stop_leaves_no_process(broker: Broker) -> None:
    pid = broker.pid
    assert pid is not None and pid_alive(pid)
    broker.stop()
    assert not pid_alive(pid)
    assert not broker.is_running()
    assert broker.pid is None
    broker.stop()  # idempotent
    with pytest.raises(OSError):
        socket.create_connection((broker.host, broker.port), timeout=1.0).close()


@pytest.mark.parametrize("kind", KINDS)
def test_start_failure_reports_exit_code_and_log(kind: str, tmp_path: Path) -> None:
    _skip_unless_available(kind)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        # Both ports given: the broker must not pick others, so it has to fail.
        failing = MANAGED[kind](tmp_path, port=taken, ws_port=taken + 1)
        with pytest.raises(BrokerError) as caught:
            failing.start(timeout=10.0)
    text = str(caught.value)
    assert "exited with code" in text
    assert "already in use" in text.lower()
    assert str(failing.log_path) in text
    assert not failing.is_running()


@pytest.mark.parametrize("kind", KINDS)
def test_relative_workdir_is_resolved_by_the_broker(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The broker runs inside its workdir, so a relative one (``rig broker``'s default) must be
    made absolute before any path is written into its command line or config."""
    _skip_unless_available(kind)
    monkeypatch.chdir(tmp_path)
    relative = Path("artifacts") / "cli" / "broker"
    with make_broker(kind, relative) as running:
        assert isinstance(running, MANAGED[kind])
        assert running.workdir == tmp_path / relative
        assert running.log_path is not None and running.log_path.is_absolute()
        round_trip(running, "tcp", f"relative-{kind}")
    assert (tmp_path / relative / running.log_path.name).is_file()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
@pytest.mark.parametrize("kind", KINDS)
def test_broker_dies_with_a_killed_parent(kind: str, tmp_path: Path) -> None:
    _skip_unless_available(kind)
    helper = (
        "import sys\nfrom pathlib import Path\nfrom rig.broker import make_broker\n"
        "b = make_broker(sys.argv[1], Path(sys.argv[2]))\nb.start()\n"
        "print(b.pid, flush=True)\nsys.stdin.read()\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    parent = subprocess.Popen(
        [sys.executable, "-c", helper, kind, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
    )
    assert parent.stdout is not None
    broker_pid = None
    try:
        ready, _, _ = select.select([parent.stdout], [], [], 20.0)
        assert ready, "helper did not report a broker pid within 20s"
        broker_pid = int(parent.stdout.readline())
        assert pid_alive(broker_pid)
        parent.kill()  # like a pytest killed with SIGKILL: no atexit, no teardown
        parent.wait(timeout=WAIT_S)
        deadline = Deadline(WAIT_S)
        while pid_alive(broker_pid) and not deadline.expired:
            time.sleep(deadline.remaining_or(0.05))  # polling a PID: there is no event to wait on
        assert not pid_alive(broker_pid), f"broker pid {broker_pid} outlived its killed parent"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(timeout=WAIT_S)
        if broker_pid is not None and pid_alive(broker_pid):
            os.kill(broker_pid, 9)


# -- how a connection ended, on the broker's records ------------------------------------------------


@pytest.fixture
def records(broker: Broker, tmp_path: Path) -> Iterator[RecordLog]:
    """The broker's records from now on, as a test's ``broker_records`` has them."""
    timeline = Timeline(tmp_path / "tap")
    tap = BrokerLogTap(broker, "", tmp_path / "tap", timeline)
    yield tap.records
    tap.close()
    timeline.close()


def test_a_clean_disconnect_is_on_record(broker: Broker, records: RecordLog) -> None:
    mark = records.mark()
    client = Client(broker, "polite").connect()
    client.disconnect()
    ended = records.wait_for(Ended, WAIT_S, client="polite", after=mark)
    assert ended.clean, ended.describe()
    kinds = [type(r) for r in records.all("polite", after=mark)]
    assert kinds == [Connect, Connack, Disconnect, Ended]


def test_reset_with_unread_data_is_unclean_and_publishes_will(broker: Broker, records: RecordLog) -> None:
    watcher = Client(broker, "watcher").connect()
    talker = Client(broker, "talker").connect()
    try:
        watcher.subscribe("will/rude")
        mark = records.mark()
        sock = raw_connect(broker, "rude", "will/rude", b"rude is gone")
        raw_subscribe(sock, "chatter/rude")
        talker.publish("chatter/rude", b"x" * 100)
        # The PUBLISH sits unread in our receive buffer: close() now makes the kernel send RST.
        readable, _, _ = select.select([sock], [], [], WAIT_S)
        assert readable, "the broker never forwarded the PUBLISH to the raw client"
        sock.close()
        ended = records.wait_for(Ended, WAIT_S, client="rude", after=mark)
        watcher.expect("will/rude", b"rude is gone")
    finally:
        talker.disconnect()
        watcher.disconnect()
    assert not ended.clean and records.disconnects("rude", after=mark) == []
    # mosquitto's words, amqtt's plugin's: a socket that closed without DISCONNECT.
    assert ended.how is EndReason.CLOSED, ended.describe()


def test_a_wait_on_records_names_what_and_where(broker: Broker, records: RecordLog) -> None:
    Client(broker, "somebody").connect().disconnect()
    records.wait_for(Ended, WAIT_S, client="somebody")
    with pytest.raises(WaitTimeout) as caught:
        records.wait_for(Connect, 0.3, client="nobody")
    assert caught.value.log_path == records.path
    assert 0 < len(caught.value.last_seen) <= 15
    assert "'nobody'" in str(caught.value)


# -- external broker and configuration ------------------------------------------------------------


def test_external_broker_connects_but_cannot_restart_or_audit(tmp_path: Path) -> None:
    _skip_unless_available("mosquitto")
    with MosquittoBroker(tmp_path) as real:
        external = make_broker("external", tmp_path, external=f"127.0.0.1:{real.port},{real.ws_port}")
        assert isinstance(external, ExternalBroker)
        assert (external.kind, external.port, external.ws_port) == ("external", real.port, real.ws_port)
        with external:  # start and stop are no-ops
            assert external.is_running()
            round_trip(external, "tcp", "external")
        assert real.is_running()
        assert external.pid is None and external.log_path is None
        assert external.record_follower() is None
        assert external.records_unavailable and "not run by the rig" in external.records_unavailable
        with pytest.raises(BrokerError, match="cannot be restarted"):
            external.restart()


@pytest.mark.parametrize(
    "value",
    ["localhost", "localhost:", ":1883", "host:port", "host:70000", "host:1883,", "host:1883,ws", "a b:1883"],
)
def test_bad_external_value_raises_config_error_naming_it(value: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        make_broker("external", tmp_path, external=value, source="--broker-external")
    assert caught.value.source == "--broker-external"
    assert repr(value) in str(caught.value)


def test_external_without_value_and_unknown_kind_raise_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="host:port"):
        make_broker("external", tmp_path)
    with pytest.raises(ConfigError, match="'rabbit'"):
        make_broker("rabbit", tmp_path)


def test_external_value_forms(tmp_path: Path) -> None:
    plain = make_broker("external", tmp_path, external="broker.lan:1883")
    with_ws = make_broker("external", tmp_path, external=" 10.0.0.2:1883,9001 ")
    ipv6 = make_broker("external", tmp_path, external="[::1]:1884")
    assert (plain.host, plain.port, plain.ws_port) == ("broker.lan", 1883, None)
    assert (with_ws.host, with_ws.port, with_ws.ws_port) == ("10.0.0.2", 1883, 9001)
    assert (ipv6.host, ipv6.port) == ("::1", 1884)
