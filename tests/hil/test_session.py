"""The persistent session (clean_session=False) across board resets and broker restarts.

The broker's records decide (what it answered in CONNACK, whether it received a SUBSCRIBE); the
firmware's console lines are a second witness.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from rig.board import Board
from rig.broker import Broker
from rig.broker.access import HOST
from rig.broker.record_log import RecordLog
from rig.broker.records import BrokerStarted, Connack, Connect, Subscribe
from rig.deadline import Deadline
from rig.errors import WaitTimeout
from rig.fixtures.contract import console_witness
from rig.host_client import HostClient
from rig.serialio import SerialLog
from rig.session import RigSession
from tests.hil.board_online import wait_online
from tests.hil.witnesses_agree import assert_console_agrees_with_broker

pytestmark = pytest.mark.hil


def test_reset_finds_session_and_does_not_resubscribe(
    board: Board,
    broker_records: RecordLog,
    serial_log: SerialLog,
    mqtt: HostClient,
    rig_session: RigSession,
    request: pytest.FixtureRequest,
) -> None:
    timeout = rig_session.settings.timeout
    client = board.config.client_id
    console = console_witness(request.node, board.config.contract, "boot", "subscribed", what="the session")
    since = broker_records.mark()
    restarted = time.time()
    serial_log.from_now()
    board.soft_reset()
    # Back before any record is asked for (see tests/hil/board_online.py).
    wait_online(mqtt, board, timeout, since=restarted)
    connack = broker_records.wait_for(Connack, timeout, client=client, after=since)
    assert connack.session_present, (
        f"the broker kept no session for the board after a reset: {connack.describe()}; "
        f"its CONNECT: {[c.describe() for c in broker_records.connects(client, after=since)]}"
    )
    if console:
        boot = serial_log.expect_event("boot", timeout)
        serial_log.expect_event("connected", timeout, session_present=True)
        serial_log.expect_event("published", timeout, topic=board.config.echo_topic, hex=b"hello".hex())
    sent = time.time()
    mqtt.publish(board.config.echo_topic, b"11 22 3311")
    mqtt.wait_count(board.config.echo_topic, b"11 22 3311", 3, timeout, since=sent)
    # A SUBSCRIBE would come right after the CONNACK, long before three echoes circulated.
    again = broker_records.subscribes(client, after=connack)
    assert not again, (
        "the firmware subscribed again although the broker kept its session: the broker received "
        f"[{again[0].describe()}] after [{connack.describe()}]; records: {broker_records.path}"
    )
    if not console:
        return
    since_boot = [e for e in serial_log.events("subscribed") if e["t"] >= boot["t"]]
    assert not since_boot, f"the firmware subscribed again although the broker kept its session: {since_boot}"
    assert_console_agrees_with_broker(
        serial_log, broker_records, client, mark=since, since=restarted, timeout=timeout
    )


def test_broker_restart_loses_session_and_firmware_resubscribes(
    board: Board,
    broker: Broker,
    broker_records: RecordLog,
    serial_log: SerialLog,
    rig_session: RigSession,
    rig_artifacts: Path,
    request: pytest.FixtureRequest,
) -> None:
    """A restarted broker has no session for the board: umqtt.robust reconnects, but only a
    firmware that then subscribes again will ever receive anything. Twice in one boot: the rest
    of the suite makes the board lose its session once per boot at most, and a firmware that
    subscribes again only the first time would stop receiving at the second."""
    if broker.kind == "external":
        pytest.skip("an external broker cannot be restarted by the rig")
    console = console_witness(
        request.node, board.config.contract, "connected", "subscribed", what="resubscribing"
    )
    for restart in (1, 2):
        _restart_and_come_back(
            restart, board, broker, broker_records, serial_log, rig_session, rig_artifacts, console
        )


def _restart_and_come_back(
    restart: int,
    board: Board,
    broker: Broker,
    broker_records: RecordLog,
    serial_log: SerialLog,
    rig_session: RigSession,
    rig_artifacts: Path,
    console: bool,
) -> None:
    timeout = rig_session.settings.timeout
    client = board.config.client_id
    lost = "the second lost session in one boot" if restart == 2 else "a lost session"
    since = broker_records.mark()
    restarted = time.time()
    serial_log.from_now()
    broker.restart(timeout=timeout)
    # Only the new broker's records count. The old one may write some after the mark: amqtt
    # still takes connections while it shuts down, so the board may connect (and subscribe)
    # to it once more before it is gone.
    run = broker_records.wait_for(BrokerStarted, timeout, after=since).epoch
    # umqtt.robust retries after a second; the new broker answers "no session".
    connect = broker_records.wait_for(Connect, timeout + 3, client=client, epoch=run)
    connack = broker_records.wait_for(Connack, timeout, client=client, after=connect)
    assert not connect.clean_session, f"the board reconnected with a clean session: {connect.describe()}"
    assert not connack.session_present, f"a restarted broker still had a session: {connack.describe()}"
    if console:
        serial_log.expect_event("connected", timeout, reconnect=True)
        # Its account of the new connection must be the broker's: no session.
        assert_console_agrees_with_broker(
            serial_log, broker_records, client, mark=since, since=restarted, timeout=timeout
        )
        try:
            serial_log.expect_event("subscribed", timeout, topic=board.config.echo_topic)
        except WaitTimeout as e:
            raise AssertionError(f"the firmware did not subscribe again after {lost}:\n{e}") from e
    # What the firmware says is a second witness: the broker must have received the SUBSCRIBE.
    subscribe = broker_records.wait_for(
        Subscribe,
        timeout,
        client=client,
        after=connack,
        epoch=run,
        where=lambda s: board.config.echo_topic in [f.topic for f in s.topics],
        what=f"topic {board.config.echo_topic!r}, subscribed again after {lost}",
    )
    # Nothing circulates any more: the broker forgot the messages in flight.
    if console:
        serial_log.expect_event("idle", timeout)
    host = HostClient(
        broker.host,
        broker.port,
        f"rig-host2-{rig_session.run_id}-{restart}",
        trace_path=rig_artifacts / "mqtt-after-restart.jsonl",
        login=broker.login(HOST),
    )
    host.connect(timeout)
    payload = b"11 22 3311 restart %d" % restart
    try:
        for topics in board.config.watch_filters():
            host.subscribe(topics)
        sent = time.time()
        host.publish(board.config.echo_topic, payload)
        host.wait_count(board.config.echo_topic, payload, 3, timeout, since=sent)
    finally:
        host.close()
    # Once is enough: a firmware that kept subscribing would flood the broker.
    subscribes = [s.describe() for s in broker_records.subscribes(client, epoch=run)]
    assert subscribes == [subscribe.describe()], (
        f"the firmware subscribed more than once to the restarted broker: {subscribes}; "
        f"records: {broker_records.path}"
    )


class HangsUp:
    """A broker that misbehaves on purpose, on the rig's broker's own address while that one is
    stopped, as a broker that is shutting down does (amqtt did both when the rig restarted it):
    ``before="CONNACK"`` reads the board's CONNECT and closes the connection unanswered;
    ``before="SUBACK"`` answers "no session", reads the board's SUBSCRIBE and closes without a
    SUBACK. Any other client is hung up on at once.

    Lifecycle: listening from creation; ``serve(timeout)`` returns once the board's packet came
    (WaitTimeout otherwise); ``close()`` frees the address for the real broker."""

    def __init__(self, host: str, port: int, client_id: str, before: str) -> None:
        assert before in ("CONNACK", "SUBACK"), before
        self.client_id = client_id
        self.before = before
        self.seen: list[str] = []
        self._listener = socket.create_server((host, port))

    def serve(self, timeout: float) -> None:
        deadline = Deadline(timeout)
        awaited = "CONNECT" if self.before == "CONNACK" else "SUBSCRIBE"
        while True:
            self._listener.settimeout(max(deadline.remaining_or(timeout), 0.01))
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                what = (
                    f"the {awaited} of {self.client_id!r} at a broker that hangs up before the {self.before}"
                )
                raise WaitTimeout(what, timeout, self.seen, None) from None
            with conn:
                conn.settimeout(max(deadline.remaining_or(timeout), 0.01))
                try:
                    if self._board_reached_the_hang_up(conn):
                        return
                except (OSError, ValueError) as e:  # a client that left, or spoke no MQTT
                    self.seen.append(f"a connection ended: {e!r}")

    def _board_reached_the_hang_up(self, conn: socket.socket) -> bool:
        client = _connect_client_id(_read_packet(conn))
        self.seen.append(f"CONNECT {client}")
        if client != self.client_id:
            return False
        if self.before == "CONNACK":
            self.seen.append(f"hung up on {client} before the CONNACK")
            return True
        conn.sendall(b"\x20\x02\x00\x00")  # CONNACK: no session present, accepted
        first = _read_packet(conn)[:1]
        self.seen.append(f"packet 0x{first.hex()} from {client}, then hung up")
        return first == b"\x82"  # SUBSCRIBE

    def close(self) -> None:
        self._listener.close()


def _read_packet(conn: socket.socket) -> bytes:
    """One MQTT packet: its first byte and its body."""
    first = _read(conn, 1)
    size, shift = 0, 0
    while True:
        byte = _read(conn, 1)[0]
        size |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return first + _read(conn, size)


def _read(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the client closed the connection")
        data += chunk
    return data


def _connect_client_id(packet: bytes) -> str:
    # MQTT 3.1.1 CONNECT: protocol name (2 + 4 bytes), level, flags, keepalive, then the client id.
    if packet[:1] != b"\x10":
        raise ValueError(f"not a CONNECT: {packet[:8].hex()}")
    body = packet[1:]
    start = 2 + 4 + 1 + 1 + 2
    size = int.from_bytes(body[start : start + 2], "big")
    return body[start + 2 : start + 2 + size].decode()


def test_a_connection_lost_before_the_suback_is_made_again_and_subscribed(
    board: Board,
    broker: Broker,
    broker_records: RecordLog,
    rig_session: RigSession,
    rig_artifacts: Path,
) -> None:
    """The firmware subscribes on the connection it just made; when that one drops before the
    SUBACK, it connects again and subscribes there. (umqtt.robust's own wait for the SUBACK
    reconnected underneath the subscribe, which then waited on the new connection for the
    answer to the SUBSCRIBE it sent on the old one: forever, echoing nothing; or the SUBSCRIBE
    could not be sent, OSError 32, and the firmware died.)"""
    _comes_back_after_a_hang_up("SUBACK", board, broker, broker_records, rig_session, rig_artifacts)


def test_a_connection_lost_before_the_connack_is_made_again_and_subscribed(
    board: Board,
    broker: Broker,
    broker_records: RecordLog,
    rig_session: RigSession,
    rig_artifacts: Path,
) -> None:
    """A broker that closes the connection before its CONNACK is out of reach, not a reason to
    die: the firmware tries again and subscribes at the broker that answers. (umqtt.simple
    1.3.4 reads the CONNACK without checking that one came, so the empty read ends in an
    IndexError, which umqtt.robust's reconnect does not catch: seen once in 20 runs on amqtt,
    which accepts connections while it shuts down.)"""
    _comes_back_after_a_hang_up("CONNACK", board, broker, broker_records, rig_session, rig_artifacts)


def _comes_back_after_a_hang_up(
    before: str,
    board: Board,
    broker: Broker,
    broker_records: RecordLog,
    rig_session: RigSession,
    rig_artifacts: Path,
) -> None:
    if broker.kind == "external":
        pytest.skip("an external broker cannot be stopped by the rig to free its address")
    if board.config.tls_ca is not None:
        pytest.skip("the broker that hangs up speaks plain MQTT: the board connects over TLS")
    timeout = rig_session.settings.timeout
    client = board.config.client_id
    since = broker_records.mark()
    broker.stop(timeout=timeout)
    fake = HangsUp(broker.host, board.config.broker_port, client, before)
    try:
        # umqtt.robust waits 2 s between attempts that find nobody listening.
        fake.serve(timeout + 3)
    finally:
        fake.close()
        # Whatever the board did: the tests after this one need the rig's broker back.
        broker.start(timeout=timeout)
    run = broker_records.wait_for(BrokerStarted, timeout, after=since).epoch
    connack = broker_records.wait_for(Connack, timeout + 3, client=client, epoch=run)
    assert not connack.session_present, f"a restarted broker still had a session: {connack.describe()}"
    broker_records.wait_for(
        Subscribe,
        timeout,
        client=client,
        after=connack,
        where=lambda s: board.config.echo_topic in [f.topic for f in s.topics],
        what=f"topic {board.config.echo_topic!r} (sent again after the hang-up before the {before})",
    )
    host = HostClient(
        broker.host,
        broker.port,
        f"rig-host2-{rig_session.run_id}",
        trace_path=rig_artifacts / "mqtt-after-hang-up.jsonl",
        login=broker.login(HOST),
    )
    host.connect(timeout)
    try:
        for topics in board.config.watch_filters():
            host.subscribe(topics)
        sent = time.time()
        host.publish(board.config.echo_topic, b"11 22 3311")
        host.wait_count(board.config.echo_topic, b"11 22 3311", 3, timeout, since=sent)
    finally:
        host.close()
