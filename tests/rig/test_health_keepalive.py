"""The keepalive watch on a real broker: a client that never pings is dropped and the watch
says so at once, with the broker's words; one that pings is watched to the end."""

from __future__ import annotations

import socket
import struct
import threading

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from rig.broker import Broker
from rig.health import KeepaliveExpired
from rig.health.keepalive import watch_connection


def connect_packet(client_id: str, keepalive: int) -> bytes:
    """An MQTT 3.1.1 CONNECT, clean session, no will: all a silent client ever sends."""
    body = b"\x00\x04MQTT\x04\x02" + struct.pack("!H", keepalive)
    body += struct.pack("!H", len(client_id)) + client_id.encode()
    return bytes([0x10, len(body)]) + body


@pytest.fixture
def keepalive_broker(private_broker: Broker) -> Broker:
    if not private_broker.enforces_keepalive or not private_broker.supports_disconnect_audit:
        pytest.skip(f"the {private_broker.kind} broker does not drop silent clients in a log the rig reads")
    return private_broker


def test_a_client_that_never_pings_is_dropped_and_the_watch_fails_at_once(keepalive_broker: Broker) -> None:
    mark = keepalive_broker.log_mark()
    with socket.create_connection((keepalive_broker.host, keepalive_broker.port), timeout=5) as sock:
        sock.sendall(connect_packet("silent-1", 2))
        assert sock.recv(4)[:1] == b"\x20", "no CONNACK"
        with pytest.raises(KeepaliveExpired, match="exceeded timeout") as failure:
            watch_connection(keepalive_broker, "silent-1", 2, 10, since=mark)
    assert "into a 10s watch" in str(failure.value)


def test_a_client_that_pings_is_watched_to_the_end(keepalive_broker: Broker) -> None:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="pinging-1")
    connected = threading.Event()
    client.on_connect = lambda *_: connected.set()
    mark = keepalive_broker.log_mark()
    client.connect(keepalive_broker.host, keepalive_broker.port, keepalive=1)
    client.loop_start()
    try:
        assert connected.wait(5)
        watch_connection(keepalive_broker, "pinging-1", 1, 3, since=mark)
    finally:
        client.loop_stop()
        client.disconnect()
