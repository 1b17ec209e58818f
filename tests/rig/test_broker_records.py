"""Broker records (rig.broker.records): what a real mosquitto and a real amqtt say they received
and answered, for a raw MQTT 3.1.1 client that sends exactly the packets under test.

mosquitto's come from its log, amqtt's from the records plugin inside the broker; both must give
the same records for the same packets.
"""

from __future__ import annotations

import dataclasses
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rig.broker import Broker, make_broker
from rig.broker.amqtt import amqtt_available
from rig.broker.mosquitto import find_mosquitto
from rig.broker.record_source import RecordFollower
from rig.broker.records import (
    BrokerRecord,
    BrokerStarted,
    BrokerStopped,
    Connack,
    Connect,
    Disconnect,
    Ended,
    EndReason,
    PingReq,
    Subscribe,
    TopicFilter,
    Unsubscribe,
    Will,
)
from rig.deadline import Deadline

WAIT_S = 5.0
KINDS = ["mosquitto", "amqtt"]


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


# -- a raw MQTT 3.1.1 client: exactly the packets a test names ------------------------------------


def _string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("!H", len(data)) + data


def _packet(first_byte: int, body: bytes) -> bytes:
    assert len(body) < 128  # one-byte remaining length is all these tests need
    return bytes([first_byte, len(body)]) + body


class RawClient:
    def __init__(
        self,
        broker: Broker,
        client_id: str,
        *,
        clean: bool = True,
        keepalive: int = 30,
        will: Will | None = None,
        username: str | None = None,
    ) -> None:
        self.sock = socket.create_connection((broker.host, broker.port), timeout=WAIT_S)
        flags, payload = (0x02 if clean else 0), _string(client_id)
        if will is not None:
            flags |= 0x04 | (will.qos << 3) | (0x20 if will.retain else 0)
            payload += _string(will.topic) + _string("gone")
        if username is not None:
            flags |= 0x80
            payload += _string(username)
        body = _string("MQTT") + bytes([4, flags]) + struct.pack("!H", keepalive) + payload
        self.sock.sendall(_packet(0x10, body))
        connack = self.recv(4)
        assert connack[:2] == b"\x20\x02" and connack[3] == 0, f"CONNECT refused: {connack!r}"
        self.session_present = bool(connack[2])

    def recv(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            assert chunk, "broker closed the connection"
            data += chunk
        return data

    def subscribe(self, *filters: TopicFilter) -> None:
        body = struct.pack("!H", 1) + b"".join(_string(f.topic) + bytes([f.qos]) for f in filters)
        self.sock.sendall(_packet(0x82, body))
        assert self.recv(4 + len(filters))[:1] == b"\x90", "no SUBACK"

    def unsubscribe(self, *topics: str) -> None:
        self.sock.sendall(_packet(0xA2, struct.pack("!H", 2) + b"".join(_string(t) for t in topics)))
        assert self.recv(4)[:1] == b"\xb0", "no UNSUBACK"

    def ping(self) -> None:
        self.sock.sendall(b"\xc0\x00")
        assert self.recv(2) == b"\xd0\x00", "no PINGRESP"

    def disconnect(self) -> None:
        self.sock.sendall(b"\xe0\x00")
        # The broker closes its side once it has read the DISCONNECT: wait for that EOF, so
        # that our close is not a reset racing the goodbye.
        assert self.sock.recv(1) == b""
        self.sock.close()

    def close(self) -> None:
        self.sock.close()


def wait_records(
    follower: RecordFollower, until: type[BrokerRecord], client: str, count: int = 1, timeout: float = WAIT_S
) -> list[BrokerRecord]:
    """Every record read until ``count`` records of type ``until`` for ``client`` arrived."""
    seen: list[BrokerRecord] = []
    deadline = Deadline(timeout)
    while sum(1 for r in seen if isinstance(r, until) and r.client == client) < count:
        if deadline.expired:
            pytest.fail(f"no {until.__name__} of {client} in {follower.path}; records: {seen}")
        seen += follower.read_new()
        time.sleep(deadline.remaining_or(0.02))  # a file gives no event to wait on
    return seen


def essentials(records: list[BrokerRecord], prefix: str) -> list[BrokerRecord]:
    """The records of clients named ``prefix...``, without what differs between brokers and
    runs: the time, the run and the wording of an ending (the broker's own words do not count
    in ``==``)."""
    out: list[BrokerRecord] = []
    for record in records:
        if record.client.startswith(prefix):
            record = dataclasses.replace(record, t=0.0, epoch=0)
            if isinstance(record, Ended):
                record = dataclasses.replace(record, detail="")
            out.append(record)
    return out


# -- both brokers, one account --------------------------------------------------------------------


def test_every_packet_of_a_session_is_recorded(broker: Broker) -> None:
    follower = broker.record_follower()
    assert follower is not None and broker.records_unavailable is None
    will = Will("rec/will", 1, True)
    client = RawClient(broker, "rec-full", keepalive=17, will=will, username="bob")
    client.subscribe(TopicFilter("rec/a", 1), TopicFilter("rec/b/#", 0))
    client.unsubscribe("rec/a", "rec/b/#")
    client.ping()
    client.disconnect()
    records = wait_records(follower, Ended, "rec-full")
    assert essentials(records, "rec-") == [
        Connect("rec-full", clean_session=True, keepalive=17, will=will, username="bob"),
        Connack("rec-full", session_present=False, return_code=0),
        Subscribe("rec-full", topics=(TopicFilter("rec/a", 1), TopicFilter("rec/b/#", 0))),
        Unsubscribe("rec-full", topics=("rec/a", "rec/b/#")),
        PingReq("rec-full"),
        Disconnect("rec-full"),
        Ended("rec-full", how=EndReason.DISCONNECT),
    ]


def test_session_present_a_closed_connection_and_a_takeover_are_recorded(broker: Broker) -> None:
    follower = broker.record_follower()
    assert follower is not None
    RawClient(broker, "rec-keep", clean=False).close()
    # Once the broker saw it closed: a new connection before then would take it over.
    records = wait_records(follower, Ended, "rec-keep")
    first = RawClient(broker, "rec-keep", clean=False)
    second = RawClient(broker, "rec-keep", clean=False)
    assert second.session_present
    second.close()
    records += wait_records(follower, Ended, "rec-keep", count=2)
    first.close()
    persistent = Connect("rec-keep", clean_session=False, keepalive=30)
    kept = Connack("rec-keep", session_present=True)
    before_takeover = [
        persistent,
        Connack("rec-keep", session_present=False),
        Ended("rec-keep", how=EndReason.CLOSED),
        persistent,
        kept,
    ]
    closed = Ended("rec-keep", how=EndReason.CLOSED)
    taken_over = Ended("rec-keep", how=EndReason.TAKEN_OVER)
    # mosquitto ends the old connection before it logs the new one; amqtt after.
    assert essentials(records, "rec-") in (
        [*before_takeover, taken_over, persistent, kept, closed],
        [*before_takeover, persistent, kept, taken_over, closed],
    )


def test_a_persistent_session_outlives_a_goodbye_and_a_pause(broker: Broker) -> None:
    """[MQTT-3.1.2-4]: a client that connects again with clean_session=0 gets its session back,
    however long it was away. (amqtt's AnonymousAuthPlugin let its session monitor delete it
    within a second: the Ctrl-C test failed on amqtt whenever the board took a tick to return.)"""
    RawClient(broker, "rec-pause", clean=False).disconnect()
    # Longer than amqtt's session monitor period (1 s): the pause is what is under test.
    time.sleep(2.5)
    back = RawClient(broker, "rec-pause", clean=False)
    back.disconnect()
    assert back.session_present, (
        f"the {broker.kind} broker dropped a persistent session after a clean goodbye"
    )


def test_a_restart_is_recorded_and_the_records_go_on_in_a_new_run(broker: Broker) -> None:
    follower = broker.record_follower()
    assert follower is not None
    RawClient(broker, "rec-before", clean=False).disconnect()
    broker.restart()
    RawClient(broker, "rec-after", clean=False).disconnect()
    records = wait_records(follower, Ended, "rec-after")
    ours = [r for r in records if not r.client or r.client.startswith("rec-")]
    kinds = [type(r) for r in ours]
    stopped, started = kinds.index(BrokerStopped), kinds.index(BrokerStarted)
    assert stopped + 1 == started, records
    assert essentials(records, "rec-after")[1] == Connack("rec-after", session_present=False)
    # Every record carries its run: the first run's up to its stop, the next from its start.
    first, second = ours[stopped].epoch, ours[started].epoch
    assert first >= 1 and second == first + 1, records
    assert {r.epoch for r in ours[: stopped + 1]} == {first}, records
    assert {r.epoch for r in ours[started:]} == {second}, records
    # A follower that starts now counts the runs before it (mosquitto: in its log; amqtt: its
    # plugin stamped them).
    later = broker.record_follower()
    assert later is not None
    RawClient(broker, "rec-later").disconnect()
    assert {r.epoch for r in wait_records(later, Ended, "rec-later")} == {second}


def test_mosquitto_records_a_keepalive_timeout(tmp_path: Path) -> None:
    _skip_unless_available("mosquitto")
    with make_broker("mosquitto", tmp_path) as broker:
        follower = broker.record_follower()
        assert follower is not None
        silent = RawClient(broker, "rec-silent", keepalive=1)
        try:
            # mosquitto 2.0 looks at keepalives every few seconds, not at 1.5 x keepalive sharp
            # (5 s here for a 1 s keepalive).
            records = wait_records(follower, Ended, "rec-silent", timeout=12.0)
            (ended,) = [r for r in records if isinstance(r, Ended) and r.client == "rec-silent"]
        finally:
            silent.close()
    assert ended.how is EndReason.KEEPALIVE_TIMEOUT, ended
