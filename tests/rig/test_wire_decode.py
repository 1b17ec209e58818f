"""rig.wire's decoder and pcap files on frames made with scapy: MQTT split and joined across TCP
segments as a real stack sends them, retransmissions, the TCP end, TLS, the secrets mask.

The frames are byte-exact Ethernet/IP/TCP as tcpdump writes them; the capture itself (tcpdump on
a real veth) is judged in tests/hil/test_wire_witness.py.
"""

from __future__ import annotations

from pathlib import Path

from scapy.contrib.mqtt import MQTT, MQTTConnack, MQTTPublish, MQTTSubscribe, MQTTTopicQOS
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from rig.report.timeline_rows import timeline_rows
from rig.wire.decode import MALFORMED, StreamDecoder
from rig.wire.pcap import Frame, masked, read_frames, read_from, write_frames
from rig.wire.records import ENCRYPTED, TcpEnd, WirePacket, to_json

BOARD_IP, BROKER_IP = "10.213.0.2", "10.213.0.1"
PORT, TLS_PORT, BOARD_PORT = 1883, 8883, 40000
MAC = "02:00:00:00:00:01"


class Link:
    """One TCP connection between board and broker, with sequence numbers kept per side."""

    def __init__(self, port: int = PORT) -> None:
        self.port = port
        self.seq = {"board": 1000, "broker": 5000}
        self.t = 100.0

    def frame(self, sender: str, payload: bytes = b"", flags: str = "PA", seq: int | None = None) -> Frame:
        board = sender == "board"
        ip = IP(src=BOARD_IP, dst=BROKER_IP) if board else IP(src=BROKER_IP, dst=BOARD_IP)
        sport, dport = (BOARD_PORT, self.port) if board else (self.port, BOARD_PORT)
        at = self.seq[sender] if seq is None else seq
        # Both addresses given: without dst, scapy asks ARP for it (seconds when a veth of
        # 10.213/16 is up).
        packet = Ether(src=MAC, dst=MAC) / ip / TCP(sport=sport, dport=dport, flags=flags, seq=at) / payload
        if seq is None:
            self.seq[sender] += len(payload) + (1 if "S" in flags or "F" in flags else 0)
        self.t += 0.01
        return Frame(self.t, bytes(packet))


def publish(topic: bytes, value: bytes, qos: int = 0, retain: int = 0, msgid: int | None = None) -> bytes:
    body = (
        MQTTPublish(topic=topic, value=value, msgid=msgid) if qos else MQTTPublish(topic=topic, value=value)
    )
    return bytes(MQTT(type=3, QOS=qos, RETAIN=retain) / body)


def decoder(tls: bool = False) -> StreamDecoder:
    return StreamDecoder(BOARD_IP, {TLS_PORT if tls else PORT: tls})


def test_two_packets_in_one_segment_and_one_across_three() -> None:
    link = Link()
    echo = publish(b"rig/echo", b"x" * 300, qos=1, retain=1, msgid=7)
    frames = [
        link.frame("board", flags="S"),
        link.frame("broker", bytes(MQTT(type=2) / MQTTConnack()) + bytes(MQTT(type=4) / b"\x00\x07")),
        link.frame("board", echo[:2]),
        link.frame("board", echo[2:150]),
        link.frame("board", echo[150:] + bytes(MQTT(type=12))),
    ]
    records = decoder().feed(frames)
    kinds = [(r.sender, r.kind) for r in records if isinstance(r, WirePacket)]
    assert kinds == [("broker", "CONNACK"), ("broker", "PUBACK"), ("board", "PUBLISH"), ("board", "PINGREQ")]
    echo_record = records[2]
    assert isinstance(echo_record, WirePacket)
    assert (echo_record.qos, echo_record.retain, echo_record.dup) == (1, True, False)
    assert (echo_record.packet_id, echo_record.topic, echo_record.payload_len) == (7, "rig/echo", 300)
    # Complete when its last byte came, not when it began.
    assert echo_record.t == frames[4].t
    assert records[1].packet_id == 7  # type: ignore[union-attr]


def test_retransmitted_and_early_segments_are_put_back_in_order() -> None:
    link = Link()
    first = publish(b"a", b"1")
    second = publish(b"b", b"22")
    third = publish(b"c", b"333")
    start = link.seq["board"]
    frames = [
        link.frame("board", first),
        link.frame("board", third, seq=start + len(first) + len(second)),  # came early
        link.frame("board", first, seq=start),  # a retransmission
        link.frame("board", second),
    ]
    records = decoder().feed(frames)
    assert [r.topic for r in records if isinstance(r, WirePacket)] == ["a", "b", "c"]


def test_the_tcp_end_says_fin_or_rst_and_who_sent_it() -> None:
    link = Link()
    frames = [
        link.frame("board", bytes(MQTT(type=14))),
        link.frame("board", flags="FA"),
        link.frame("broker", flags="FA"),
        link.frame("broker", flags="R"),
    ]
    records = decoder().feed(frames)
    assert [type(r).__name__ for r in records] == ["WirePacket", "TcpEnd", "TcpEnd", "TcpEnd"]
    ends = [(r.sender, r.how) for r in records if isinstance(r, TcpEnd)]
    assert ends == [("board", "FIN"), ("broker", "FIN"), ("broker", "RST")]
    assert records[0].kind == "DISCONNECT"  # type: ignore[union-attr]


def test_a_subscribe_and_a_five_byte_remaining_length() -> None:
    link = Link()
    subscribe = bytes(
        MQTT(type=8, QOS=1) / MQTTSubscribe(msgid=3, topics=[MQTTTopicQOS(topic=b"t/#", QOS=1)])
    )
    records = decoder().feed(
        [link.frame("board", subscribe), link.frame("broker", b"\x30\xff\xff\xff\xff\x01")]
    )
    assert [(r.kind, r.packet_id) for r in records if isinstance(r, WirePacket)] == [
        ("SUBSCRIBE", 3),
        (MALFORMED, None),
    ]


def test_over_tls_every_record_says_encrypted() -> None:
    link = Link(TLS_PORT)
    records = decoder(tls=True).feed([link.frame("board", b"\x16\x03\x01" + b"x" * 50)])
    assert len(records) == 1 and isinstance(records[0], WirePacket)
    assert records[0].kind == ENCRYPTED and records[0].qos is None and records[0].length == 53
    assert "encrypted" in records[0].describe()


def test_other_ports_are_not_the_broker() -> None:
    link = Link(port=9999)
    assert decoder().feed([link.frame("board", publish(b"a", b"b"))]) == []


def test_pcap_round_trip_leaves_out_a_record_cut_short(tmp_path: Path) -> None:
    link = Link()
    frames = [link.frame("board", publish(b"a", b"1")), link.frame("broker", bytes(MQTT(type=13)))]
    path = tmp_path / "wire.pcap"
    assert write_frames(path, frames) == 2
    with path.open("ab") as f:
        f.write(b"\x01\x02\x03")  # tcpdump killed in the middle of a record header
    read = list(read_frames(path))
    assert [f.data for f in read] == [f.data for f in frames]
    assert abs(read[0].t - frames[0].t) < 1e-6
    got, offset = read_from(path, 0)
    later, _ = read_from(path, offset)
    assert len(got) == 2 and later == []


def test_a_secret_is_masked_in_the_frames_kept() -> None:
    link = Link()
    frame = link.frame("board", b"\x10\x20....password-of-the-board....")
    kept = masked(frame, [b"password-of-the-board"])
    assert b"password" not in kept.data and len(kept.data) == len(frame.data)
    assert masked(frame, []) is frame


def test_the_report_marks_a_reset_and_a_malformed_packet_on_the_wire() -> None:
    link = Link()
    records = decoder().feed(
        [link.frame("broker", b"\x30\xff\xff\xff\xff\x01"), link.frame("board", flags="R")]
    )
    entries = [{"t": r.t, "src": "wire", "text": r.describe(), "wire": to_json(r)} for r in records]
    rows = timeline_rows(entries, start=100.0)
    assert [row.alert for row in rows.head] == [
        "malformed MQTT from the broker",
        "connection reset by the board",
    ]
