"""The scripted broker itself, against a client written here on loopback: its packets are MQTT's
layout, its good service answers as a broker does, and a wait that runs out says what it awaited,
what it saw last, and where the whole log is."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from rig.deadline import Deadline
from rig.scripted_broker import ScriptedBroker, packets
from rig.scripted_broker.conformance import Conformance
from rig.scripted_broker.decode import decode
from rig.scripted_broker.scenario import (
    Accept,
    Expect,
    ExpectEnd,
    Scenario,
    ScenarioFailed,
    Send,
    Serve,
)

CONNECT = packets.packet(0x10, b"\x00\x04MQTT\x04\x02\x00\x3c" + b"\x00\x03abc")


@pytest.fixture
def scripted_broker(tmp_path: Path) -> Iterator[ScriptedBroker]:
    with ScriptedBroker("127.0.0.1", tmp_path / "scripted-broker.log") as b:
        yield b


def client(broker: ScriptedBroker) -> socket.socket:
    sock = socket.create_connection((broker.host, broker.port), timeout=5)
    return sock


def read_packet(sock: socket.socket) -> bytes:
    data = sock.recv(2)
    size, _ = packets.decode_length(data[1:])
    while len(data) < 2 + size:
        data += sock.recv(2 + size - len(data))
    return data


def test_remaining_length_is_mqtts_variable_length() -> None:
    assert packets.remaining_length(0) == b"\x00"
    assert packets.remaining_length(127) == b"\x7f"
    assert packets.remaining_length(128) == b"\x80\x01"
    assert packets.remaining_length(268_435_455) == b"\xff\xff\xff\x7f"
    assert packets.decode_length(b"\x80\x01") == (128, 2)
    with pytest.raises(ValueError, match="past four bytes"):
        packets.decode_length(packets.five_byte_length()[1:])


def test_packets_decode_back_with_scapy() -> None:
    sent = packets.publish(b"a/\xc3\xa9", b"hi", qos=2, pid=9, retain=True, dup=True)
    got = decode(sent)
    assert (got.kind, got.qos, got.dup, got.retain, got.pid) == ("PUBLISH", 2, True, True, 9)
    assert (got.topic, got.payload) == (b"a/\xc3\xa9", b"hi")
    assert packets.connack(5) == b"\x20\x02\x00\x05"
    assert packets.pubrel(10) == b"\x62\x02\x00\x0a"
    lying = packets.lying_length(packets.publish(b"t", b"x"), 100)
    assert packets.decode_length(lying[1:])[0] == 4 + 100
    with pytest.raises(ValueError, match="needs packet identifier"):
        packets.publish(b"t", b"x", qos=1)


def test_served_connections_get_a_good_brokers_answers(scripted_broker: ScriptedBroker) -> None:
    sock = client(scripted_broker)
    sock.sendall(CONNECT)
    assert read_packet(sock) == packets.connack(0)
    sock.sendall(packets.packet(0x82, b"\x00\x07" + b"\x00\x01t\x00"))
    assert read_packet(sock) == packets.suback(7, 0)
    sock.sendall(b"\xc0\x00")
    assert read_packet(sock) == packets.pingresp()
    sock.sendall(packets.publish(b"t", b"x", qos=1, pid=3))
    assert read_packet(sock) == packets.puback(3)
    sock.close()


def test_a_scenario_plays_and_a_wait_that_runs_out_says_what_and_where(
    scripted_broker: ScriptedBroker,
) -> None:
    scenario = Scenario(
        "demo",
        "MQTT-0.0.0-0",
        "a refusal, then silence",
        (
            Accept(5),
            Expect("CONNECT", 5),
            Send("CONNACK 5", lambda p: packets.connack(5)),
            Expect("SUBSCRIBE", 0.3),
        ),
    )
    with scripted_broker.scripted():  # before the client connects: the scenario's to take
        sock = client(scripted_broker)
        sock.sendall(CONNECT)
        with pytest.raises(ScenarioFailed) as caught:
            scenario.play(scripted_broker, b"t", b"s")
    text = str(caught.value)
    assert "scenario demo (MQTT-0.0.0-0: a refusal, then silence), step 4 of 4" in text
    assert "awaited SUBSCRIBE on connection #1 for 0.3s; last seen: CONNECT" in text
    assert f"full log: {scripted_broker.log_path}" in text
    assert read_packet(sock) == packets.connack(5)
    sock.close()


def test_a_client_that_sends_garbage_or_closes_ends_the_connection(scripted_broker: ScriptedBroker) -> None:
    scenario = Scenario(
        "end", "-", "garbage", (Accept(5), Expect("CONNECT", 5), ExpectEnd(5, "garbage"), Serve())
    )
    with scripted_broker.scripted():
        sock = client(scripted_broker)
        sock.sendall(CONNECT + packets.five_byte_length())
        play = scenario.play(scripted_broker, b"t", b"s")
    ended = play.connection().wait_ended(Deadline(1))
    assert ended is not None and ended.how == "garbage", ended
    sock.close()


def test_conformance_counts_scenarios_and_distinct_statements() -> None:
    results = Conformance(total=3)
    results.record("a", "MQTT-3.2.2-5", True)
    results.record("b", "MQTT-4.4.0-1 / MQTT-4.3.3-2", False)
    assert results.summary() == "1 of 3 scenarios passed, 3 statements exercised"
    results.record("c", "3.1.4 (no number)", True)
    assert results.summary() == "2 of 3 scenarios passed, 3 statements exercised"
    assert "| b | MQTT-4.4.0-1 / MQTT-4.3.3-2 | FAILED |" in results.table()
