"""The verdicts the wire gives: what the board sent, judged on the packets themselves.

One home for them: the HIL tests (tests/hil/test_wire_witness.py, test_keepalive.py,
test_disconnect.py) and the mutation cases judge here. Each raises ``AssertionError`` with a
message that names the cause, the packets seen and the test's capture file.
"""

from __future__ import annotations

import itertools

from rig.errors import InfrastructureError
from rig.wire.records import BOARD, BROKER, CaptureGap, TcpEnd, WirePacket, WireRecord
from rig.wire.witness import WireWitness


class WireCaptureIncomplete(InfrastructureError):
    """tcpdump lost frames that a verdict needs: an infrastructure failure, never the board's."""


def _seen(records: list[WireRecord], wire: WireWitness) -> str:
    lines = "\n".join(f"    {r.describe()}" for r in records[-12:]) or "    (nothing)"
    return f"\n  on the wire:\n{lines}\n  capture: {wire.pcap_path}"


def echo_sent(wire: WireWitness, topic: str, size: int, since: float, timeout: float) -> WirePacket:
    """The board's PUBLISH of the echo of a ``size``-byte message the broker delivered to it
    on ``topic`` after ``since``."""
    delivered = wire.wait_for(
        WirePacket,
        f"the broker's PUBLISH of the {size}-byte message to the board on {topic}",
        lambda p: p.sender == BROKER and p.kind == "PUBLISH" and p.topic == topic and p.payload_len == size
        and p.t >= since,
        timeout,
    )  # fmt: skip
    return wire.wait_for(
        WirePacket,
        f"the board's echo ({size} bytes on {topic}) after the broker delivered it",
        lambda p: p.sender == BOARD and p.kind == "PUBLISH" and p.topic == topic and p.payload_len == size
        and p.t >= delivered.t,
        timeout,
    )  # fmt: skip


def assert_echo_flags(wire: WireWitness, echo: WirePacket, qos: int) -> None:
    """The echo left the board at the injected ``qos``, not retained, not a duplicate."""
    wrong = []
    if echo.qos != qos:
        wrong.append(f"at QoS {echo.qos}, not the QoS {qos} it was injected with")
    if echo.retain:
        wrong.append("with the retain flag set (the broker would keep it for every new subscriber)")
    if echo.dup:
        wrong.append("with DUP set, though it was never sent before")
    assert not wrong, f"the board sent its echo {' and '.join(wrong)}: [{echo.describe()}]" + _seen(
        wire.records(), wire
    )


def assert_pings(
    wire: WireWitness, since: float, keepalive: float, count: int, timeout: float
) -> list[WirePacket]:
    """An idle board sends PINGREQ on its own: ``count`` of them after ``since`` within
    ``timeout``, each answered by the broker, and never a keepalive without a packet from the
    board (MQTT 3.1.1, 3.1.2.10). Returns the PINGREQs."""

    def board_packet(r: WireRecord) -> bool:
        return isinstance(r, WirePacket) and r.sender == BOARD and r.t >= since

    sent = wire.collect(
        board_packet,
        lambda found: sum(1 for r in found if getattr(r, "kind", "") == "PINGREQ") >= count,
        timeout,
    )
    pings = [r for r in sent if isinstance(r, WirePacket) and r.kind == "PINGREQ"]
    assert len(pings) >= count, (
        f"the board sent {len(pings)} PINGREQ in {timeout:.1f}s idle (keepalive {keepalive:g}s): an idle "
        f"client must ping within each keepalive (MQTT 3.1.1, 3.1.2.10), whatever the broker tolerates"
        + _seen(wire.records(), wire)
    )
    times = [since, *(r.t for r in sent if r.t <= pings[count - 1].t)]
    gap = max(b - a for a, b in itertools.pairwise(times))
    lost = [
        r
        for r in wire.records()
        if isinstance(r, CaptureGap) and r.sender == BOARD and since <= r.t <= pings[count - 1].t
    ]
    if gap > keepalive and lost:
        raise WireCaptureIncomplete(
            f"the board looked silent for {gap:.2f}s (keepalive {keepalive:g}s), but the capture lost "
            f"{sum(g.missing for g in lost)} bytes it sent then: the wire cannot tell"
            + _seen(wire.records(), wire)
        )
    assert gap <= keepalive, (
        f"the board was silent for {gap:.2f}s, longer than its keepalive of {keepalive:g}s, before a "
        "PINGREQ" + _seen(wire.records(), wire)
    )
    answers = [
        r for r in wire.records() if isinstance(r, WirePacket) and r.sender == BROKER and r.kind == "PINGRESP"
    ]
    assert answers, "the broker answered none of the board's PINGREQs" + _seen(wire.records(), wire)
    return pings[:count]


def assert_board_speaks_within_keepalive(
    wire: WireWitness, since: float, keepalive: float, count: int, timeout: float
) -> list[WirePacket]:
    """Over TLS, where a PINGREQ is an "encrypted" record like any other: an idle board sends
    ``count`` records after ``since`` within ``timeout``, never a keepalive apart, and the broker
    sends records back. MQTT 3.1.1, 3.1.2.10 asks for any control packet within each keepalive,
    so this is the rule itself; that they are PINGREQs only a readable wire could say. Returns
    the board's records."""

    def board_record(r: WireRecord) -> bool:
        return isinstance(r, WirePacket) and r.sender == BOARD and r.t >= since

    sent = [r for r in wire.collect(board_record, lambda found: len(found) >= count, timeout)]
    sent_packets = [r for r in sent if isinstance(r, WirePacket)]
    assert len(sent_packets) >= count, (
        f"the board sent {len(sent_packets)} TLS records in {timeout:.1f}s idle (keepalive {keepalive:g}s): "
        "an idle client must send a packet within each keepalive (MQTT 3.1.1, 3.1.2.10), whatever "
        "the broker tolerates" + _seen(wire.records(), wire)
    )
    times = [since, *(r.t for r in sent_packets[:count])]
    gap = max(b - a for a, b in itertools.pairwise(times))
    assert gap <= keepalive, (
        f"the board was silent for {gap:.2f}s on its TLS link, longer than its keepalive of "
        f"{keepalive:g}s: an idle client must send a packet within each keepalive (MQTT 3.1.1, "
        "3.1.2.10)" + _seen(wire.records(), wire)
    )
    answers = [
        r
        for r in wire.records()
        if isinstance(r, WirePacket) and r.sender == BROKER and r.t > sent_packets[0].t
    ]
    assert answers, "the broker sent nothing back to the board's idle TLS records" + _seen(
        wire.records(), wire
    )
    return sent_packets[:count]


def connection_end(wire: WireWitness, since: float, timeout: float) -> list[TcpEnd]:
    """How the board's connection that ends first after ``since`` ended: every FIN and RST of
    it, once both sides sent FIN or one sent RST (or ``timeout`` expired)."""
    first = wire.wait_for(TcpEnd, "the end of the board's connection", lambda e: e.t >= since, timeout)

    def of_it(r: WireRecord) -> bool:
        return isinstance(r, TcpEnd) and r.connection == first.connection

    def done(found: list[WireRecord]) -> bool:
        ends = [r for r in found if isinstance(r, TcpEnd)]
        return any(e.how == "RST" for e in ends) or {e.sender for e in ends if e.how == "FIN"} == {
            BOARD,
            BROKER,
        }

    return [r for r in wire.collect(of_it, done, timeout) if isinstance(r, TcpEnd)]


def assert_goodbye(wire: WireWitness, ends: list[TcpEnd], *, disconnect_readable: bool) -> None:
    """The board said DISCONNECT on the connection before it ended, and it ended with FIN, never
    RST: with RST the broker may drop the unread DISCONNECT and publish the will. RST is judged
    first: a close with bytes unread also drops what the board had not sent yet, its DISCONNECT
    among them, so when both are wrong the RST is the cause."""
    connection = ends[0].connection
    reset = [e for e in ends if e.how == "RST"]
    assert not reset, (
        f"the board's connection :{connection} ended in RST ({reset[0].describe()}), not FIN: the "
        "board closed a socket with bytes unread, and the broker may discard its DISCONNECT"
        + _seen(wire.records(), wire)
    )
    if disconnect_readable:
        goodbyes = [
            p for p in wire.packets("DISCONNECT", BOARD) if p.connection == connection and p.t <= ends[0].t
        ]
        lost = [
            r
            for r in wire.records()
            if isinstance(r, CaptureGap) and r.sender == BOARD and r.connection == connection
        ]
        if not goodbyes and lost:
            # Not the board's fault, and not a pass either: the wire cannot say (the broker's
            # records still judge the same close in tests/hil/test_disconnect.py).
            raise WireCaptureIncomplete(
                f"the capture lost {sum(g.missing for g in lost)} bytes of the board's connection "
                f":{connection} before it ended, so the wire cannot tell whether the board sent "
                "DISCONNECT" + _seen(wire.records(), wire)
            )
        assert goodbyes, (
            f"the board closed its connection :{connection} ({ends[0].describe()}) without sending "
            "DISCONNECT first" + _seen(wire.records(), wire)
        )
