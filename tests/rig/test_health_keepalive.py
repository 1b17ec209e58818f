"""The keepalive watch on a real broker: a client that never pings is dropped and the watch
says so at once, with the broker's record of it; one that pings is watched to the end."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from rig.broker import Broker
from rig.broker.record_log import RecordLog
from rig.evidence.broker_tap import BrokerLogTap
from rig.evidence.timeline import Timeline
from rig.health import KeepaliveExpired
from rig.health.keepalive import watch_connection


def connect_packet(client_id: str, keepalive: int) -> bytes:
    """An MQTT 3.1.1 CONNECT, clean session, no will: all a silent client ever sends."""
    body = b"\x00\x04MQTT\x04\x02" + struct.pack("!H", keepalive)
    body += struct.pack("!H", len(client_id)) + client_id.encode()
    return bytes([0x10, len(body)]) + body


@pytest.fixture
def keepalive_records(private_broker: Broker, tmp_path: Path) -> Iterator[RecordLog]:
    """The records of a broker that drops silent clients, as a test's ``broker_records``."""
    if not private_broker.enforces_keepalive:
        pytest.skip(f"the {private_broker.kind} broker does not drop silent clients")
    timeline = Timeline(tmp_path / "tap")
    tap = BrokerLogTap(private_broker, "", tmp_path / "tap", timeline)
    yield tap.records
    tap.close()
    timeline.close()


def test_a_client_that_never_pings_is_dropped_and_the_watch_fails_at_once(
    private_broker: Broker, keepalive_records: RecordLog
) -> None:
    mark = keepalive_records.mark()
    with socket.create_connection((private_broker.host, private_broker.port), timeout=5) as sock:
        sock.sendall(connect_packet("silent-1", 2))
        assert sock.recv(4)[:1] == b"\x20", "no CONNACK"
        with pytest.raises(KeepaliveExpired, match="ENDED silent-1: keepalive_timeout") as failure:
            watch_connection(keepalive_records, "silent-1", 2, 10, after=mark)
    assert "into a 10s watch" in str(failure.value)
    # The broker's own words, for a reader who wants them.
    assert "has exceeded timeout" in str(failure.value)


def test_a_client_that_pings_is_watched_to_the_end(
    private_broker: Broker, keepalive_records: RecordLog
) -> None:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="pinging-1")
    connected = threading.Event()
    client.on_connect = lambda *_: connected.set()
    mark = keepalive_records.mark()
    client.connect(private_broker.host, private_broker.port, keepalive=1)
    client.loop_start()
    try:
        assert connected.wait(5)
        watch_connection(keepalive_records, "pinging-1", 1, 3, after=mark)
    finally:
        client.loop_stop()
        client.disconnect()
