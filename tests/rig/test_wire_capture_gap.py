"""A capture that lost frames (tcpdump's ring full on a loaded machine) must not hide the packets
after the hole: the decoder says how many bytes it lost and reads on from the next segment that
starts a packet. Seen in a run of the HIL suite under load: the board's DISCONNECT was on the
wire, after 70 lost bytes, and the check said the board never sent it.
"""

from __future__ import annotations

from scapy.contrib.mqtt import MQTT

from rig.wire.records import CaptureGap, TcpEnd, WirePacket, alert_for, to_json
from tests.rig.test_wire_decode import Link, decoder, publish

DISCONNECT = bytes(MQTT(type=14))


def test_a_lost_segment_then_disconnect_and_fin_still_shows_the_disconnect() -> None:
    link = Link()
    lost = publish(b"rig/b/echo", b"11 22 3311")
    frames = [link.frame("board", publish(b"rig/b/echo", b"hello"))]
    link.frame("board", lost)  # sent, and acknowledged by the broker, but never captured
    frames += [link.frame("board", DISCONNECT), link.frame("board", flags="FA")]
    records = decoder().feed(frames)
    kinds = [r.kind if isinstance(r, WirePacket) else type(r).__name__ for r in records]
    assert kinds == ["PUBLISH", "CaptureGap", "DISCONNECT", "TcpEnd"], records
    gap = records[1]
    assert isinstance(gap, CaptureGap) and gap.missing == len(lost) and gap.sender == "board"
    assert "capture lost" in alert_for(to_json(gap))


def test_a_hole_never_filled_is_given_up_after_a_second_of_later_segments() -> None:
    link = Link()
    frames = [link.frame("board", publish(b"rig/b/echo", b"hello"))]
    link.frame("board", publish(b"rig/b/echo", b"lost"))
    frames.append(link.frame("board", publish(b"rig/b/echo", b"after")))
    link.t += 1.5  # the next segment comes well past any retransmission of the lost one
    frames.append(link.frame("board", publish(b"rig/b/echo", b"later")))
    records = decoder().feed(frames)
    packets = [r for r in records if isinstance(r, WirePacket)]
    assert [p.payload_len for p in packets] == [len(b"hello"), len(b"after"), len(b"later")], records
    assert any(isinstance(r, CaptureGap) for r in records)


def test_a_retransmission_that_fills_the_hole_is_no_gap() -> None:
    link = Link()
    frames = [link.frame("board", publish(b"rig/b/echo", b"hello"))]
    first = publish(b"rig/b/echo", b"first")
    at = link.seq["board"]
    link.frame("board", first)  # delayed, then retransmitted below
    frames.append(link.frame("board", publish(b"rig/b/echo", b"second")))
    frames.append(link.frame("board", first, seq=at))
    records = decoder().feed(frames)
    assert not any(isinstance(r, CaptureGap) for r in records), records
    assert [r.payload_len for r in records if isinstance(r, WirePacket)] == [
        len(b"hello"),
        len(b"first"),
        len(b"second"),
    ]


def test_after_a_hole_a_segment_inside_a_packet_is_skipped_until_one_starts_a_packet() -> None:
    link = Link()
    frames = [link.frame("board", publish(b"rig/b/echo", b"hello"))]
    link.frame("board", b"\x30")  # a PUBLISH's first byte, lost
    frames.append(link.frame("board", publish(b"rig/b/echo", b"xy")[1:]))  # its rest: no packet starts here
    frames += [link.frame("board", DISCONNECT), link.frame("board", flags="RA")]
    records = decoder().feed(frames)
    kinds = [r.kind if isinstance(r, WirePacket) else type(r).__name__ for r in records]
    assert kinds == ["PUBLISH", "CaptureGap", "DISCONNECT", "TcpEnd"], records
    assert isinstance(records[-1], TcpEnd) and records[-1].how == "RST"
