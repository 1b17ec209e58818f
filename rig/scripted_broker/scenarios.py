"""The scenarios: what a broker in the field may do to a board, each named for the MQTT 3.1.1
statement it exercises, and what the board must do on the wire in return.

What the board must do is this rig's firmware's behaviour as docs/broker-scenarios.md writes it
down (its console's events are the tests' to check). The bounds come from the board's own
settings (``Timing``): a scenario never waits longer than the firmware promises to take, plus a
margin for a loaded machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from rig.scripted_broker import packets
from rig.scripted_broker.decode import Received
from rig.scripted_broker.scenario import (
    Accept,
    Close,
    Expect,
    ExpectAll,
    ExpectEnd,
    Kick,
    KickedClosedByBoard,
    Play,
    Reset,
    Scenario,
    Send,
    Serve,
    Step,
    Withhold,
    steps,
)

# umqtt.robust 1.0's wait (s) before it connects again after a lost connection (its DELAY).
ROBUST_DELAY = 2.0

# The longest topic the firmware can subscribe to (bytes). umqtt.simple 1.3.4's subscribe writes
# the SUBSCRIBE's remaining length, 2 + 2 + len(topic) + 1, in one byte with no continuation:
# below 128 only. One byte more and the SUBSCRIBE goes out malformed (docs/broker-scenarios.md).
LONGEST_TOPIC = 122
# One byte past it: the SUBSCRIBE's remaining length is 128, two bytes (0x80 0x01). The firmware
# writes its SUBSCRIBE itself (whole_packet.py), so it takes this one too (topic-past-one-byte).
PAST_ONE_BYTE_TOPIC = LONGEST_TOPIC + 1
# Multi-byte UTF-8 in the board's topic prefix: 2, 3 and 4 bytes a character.
MULTI_BYTE = "/ü€😀"


def edge_topic_prefix(prefix: str, echo_suffix: str = "/echo", length: int = LONGEST_TOPIC) -> str:
    """``prefix`` with multi-byte characters added and padded so that the echo topic
    (``prefix + echo_suffix``) is exactly ``length`` bytes of UTF-8: one board deploy serves
    the scenarios of both edges (topic-utf8, topic-longest)."""
    base = prefix + MULTI_BYTE
    pad = length - len((base + echo_suffix).encode())
    if pad < 0:
        raise ValueError(f"topic prefix {prefix!r} is too long for an echo topic of {length} bytes")
    return base + "-" * pad


@dataclass(frozen=True)
class Timing:
    """The board's own bounds (its config.json) and the margin a loaded machine adds."""

    socket_timeout: float
    keepalive: float
    backoff_initial: float
    loop_period: float
    slack: float = 5.0
    # The longest wait after a refusal (config.json's backoff_max); None: backoff_initial.
    backoff_max: float | None = None

    @property
    def longest_backoff(self) -> float:
        return self.backoff_initial if self.backoff_max is None else self.backoff_max

    @property
    def at_once(self) -> float:
        """The board acts on what it read within a loop turn or two."""
        return 2 * self.loop_period + self.slack

    @property
    def silent_broker(self) -> float:
        """MQTT 3.1.2.10: a broker silent for 1.5 keepalives is gone; the board looks once a turn."""
        return 1.5 * self.keepalive + self.loop_period + 1.0


def _pid(expected: int) -> Callable[[Received, Play], bool]:
    return lambda r, p: r.pid == expected


def _echo(payload: bytes) -> Expect:
    return Expect(
        "PUBLISH",
        0,
        f"echo of {payload!r} on the echo topic",
        lambda r, p: r.topic == p.echo_topic and r.payload == payload,
    )


def _subscribed(r: Received, p: Play) -> bool:
    return r.details.get("filters") == [(p.echo_topic, 0)]


def _keeps_session(r: Received, p: Play) -> bool:
    return r.details.get("clean_session") is False


def welcome(
    timeout: float,
    t: Timing,
    *,
    session_present: bool = False,
    serve: bool = True,
    mark: str | None = None,
) -> list[Step]:
    """The board's next connection, taken as a good broker would: CONNECT, CONNACK, its
    SUBSCRIBE (when no session was kept) and its "online"; then served. ``mark``: note the
    time of its CONNECT under that name (``Mark``)."""
    out: list[Step] = [
        Accept(timeout),
        Expect("CONNECT", t.at_once, "with clean_session=0", _keeps_session),
        *([Mark(mark)] if mark is not None else []),
        Send(
            f"CONNACK 0, session present {int(session_present)}",
            lambda p: packets.connack(0, session_present),
        ),
    ]
    if not session_present:
        out += [
            Expect("SUBSCRIBE", t.at_once, "to the echo topic at QoS 0", _subscribed),
            Send("SUBACK 0", lambda p: packets.suback(p.last.pid if p.last and p.last.pid else 0, 0)),
        ]
    out.append(
        Expect(
            "PUBLISH",
            t.at_once,
            '"online", retained, on the status topic',
            lambda r, p: r.topic == p.status_topic and r.payload == b"online" and r.retain,
        )
    )
    return [*out, Serve()] if serve else out


def connack_refused(code: int, t: Timing) -> Scenario:
    return Scenario(
        f"connack-refused-{code}",
        "MQTT-3.2.2-5",
        f"CONNACK {code} ({packets_refusal(code)}), then the broker closes",
        steps(
            Kick(),
            Accept(t.at_once),
            Expect("CONNECT", t.at_once),
            Send(f"CONNACK {code}", lambda p: packets.connack(code)),
            Close(),
            ExpectEnd(t.at_once, "refused"),
            welcome(t.backoff_initial + t.at_once, t),
        ),
    )


def packets_refusal(code: int) -> str:
    return {
        1: "unacceptable protocol version",
        2: "identifier rejected",
        3: "server unavailable",
        4: "bad user name or password",
        5: "not authorized",
    }[code]


def connack_late(t: Timing) -> Scenario:
    return Scenario(
        "connack-late",
        "3.1.4 (no number: a client that gets no CONNACK in reasonable time closes)",
        "CONNACK only after the board's connect timeout",
        steps(
            Kick(),
            Accept(t.at_once),
            Expect("CONNECT", t.at_once),
            ExpectEnd(t.socket_timeout + t.at_once, "no CONNACK within its socket timeout"),
            Send("CONNACK 0, too late", lambda p: packets.connack(0)),
            welcome(ROBUST_DELAY + t.at_once, t),
        ),
    )


def suback_failure(t: Timing) -> Scenario:
    return Scenario(
        "suback-failure",
        "MQTT-3.9.3-2 (return code 0x80, Failure)",
        "SUBACK 0x80: the subscription refused",
        steps(
            Kick(),
            Accept(t.at_once),
            Expect("CONNECT", t.at_once),
            Send("CONNACK 0", lambda p: packets.connack(0)),
            Expect("SUBSCRIBE", t.at_once),
            Send("SUBACK 0x80", lambda p: packets.suback(p.last.pid if p.last and p.last.pid else 0, 0x80)),
            ExpectEnd(
                t.backoff_initial + t.at_once,
                "it cannot work without its subscription: it waits backoff_initial and tries again",
            ),
            welcome(ROBUST_DELAY + t.at_once, t),
        ),
    )


def closed_before_subscribe(t: Timing) -> Scenario:
    return Scenario(
        "closed-before-subscribe",
        "MQTT-3.2.2-3 (session present 0: the client subscribes again)",
        "the connection reset right after CONNACK, before the SUBSCRIBE",
        steps(
            Kick(),
            Accept(t.at_once),
            Expect("CONNECT", t.at_once),
            Send("CONNACK 0", lambda p: packets.connack(0)),
            Reset(),
            welcome(ROBUST_DELAY + t.at_once, t),
        ),
    )


def pingresp_withheld(t: Timing) -> Scenario:
    return Scenario(
        "pingresp-withheld",
        "MQTT-3.1.2-24 / 3.1.2.10 (a silent peer is gone after 1.5 keepalives)",
        "PINGRESP withheld: the broker goes silent",
        steps(
            Kick(),
            welcome(t.at_once, t, serve=False),
            Withhold(),
            ExpectEnd(t.silent_broker, "silent for 1.5 keepalives"),
            welcome(t.at_once, t),
        ),
    )


def _handshake(t: Timing) -> list[Step]:
    return [Kick(), *welcome(t.at_once, t, serve=False)]


def qos1_to_board(t: Timing) -> Scenario:
    return Scenario(
        "publish-qos1",
        "MQTT-4.3.2-2",
        "a PUBLISH at QoS 1 to the board: PUBACK with its packet id",
        steps(
            _handshake(t),
            Send("PUBLISH QoS 1 id 4660", lambda p: packets.publish(p.echo_topic, b"qos1", qos=1, pid=4660)),
            ExpectAll((Expect("PUBACK", 0, "id 4660", _pid(4660)), _echo(b"qos1")), t.at_once),
            Serve(),
        ),
    )


def qos2_to_board(t: Timing) -> Scenario:
    return Scenario(
        "publish-qos2",
        "MQTT-4.3.3-2",
        "a PUBLISH at QoS 2 to the board: PUBREC, then PUBCOMP for the PUBREL",
        steps(
            _handshake(t),
            Send("PUBLISH QoS 2 id 9029", lambda p: packets.publish(p.echo_topic, b"qos2", qos=2, pid=9029)),
            Expect("PUBREC", t.at_once, "id 9029", _pid(9029)),
            Send("PUBREL id 9029", lambda p: packets.pubrel(9029)),
            ExpectAll((Expect("PUBCOMP", 0, "id 9029", _pid(9029)), _echo(b"qos2")), t.at_once),
            Serve(),
        ),
    )


def qos1_redelivered(t: Timing) -> Scenario:
    return Scenario(
        "publish-qos1-dup",
        "MQTT-4.4.0-1",
        "a QoS 1 PUBLISH redelivered with DUP after a reconnect: acknowledged again",
        steps(
            _handshake(t),
            Send("PUBLISH QoS 1 id 4661", lambda p: packets.publish(p.echo_topic, b"dup1", qos=1, pid=4661)),
            Expect("PUBACK", t.at_once, "id 4661", _pid(4661)),
            Reset(),
            welcome(ROBUST_DELAY + t.at_once, t, session_present=True, serve=False),
            Send(
                "PUBLISH QoS 1 DUP id 4661",
                lambda p: packets.publish(p.echo_topic, b"dup1", qos=1, pid=4661, dup=True),
            ),
            ExpectAll((Expect("PUBACK", 0, "id 4661", _pid(4661)), _echo(b"dup1")), t.at_once),
            Serve(),
        ),
    )


def qos2_redelivered(t: Timing) -> Scenario:
    return Scenario(
        "publish-qos2-dup",
        "MQTT-4.4.0-1 / MQTT-4.3.3-2",
        "a QoS 2 PUBLISH redelivered with DUP after a reconnect: PUBREC again, delivered once",
        steps(
            _handshake(t),
            Send("PUBLISH QoS 2 id 9030", lambda p: packets.publish(p.echo_topic, b"dup2", qos=2, pid=9030)),
            Expect("PUBREC", t.at_once, "id 9030", _pid(9030)),
            Reset(),
            welcome(ROBUST_DELAY + t.at_once, t, session_present=True, serve=False),
            Send(
                "PUBLISH QoS 2 DUP id 9030",
                lambda p: packets.publish(p.echo_topic, b"dup2", qos=2, pid=9030, dup=True),
            ),
            Expect("PUBREC", t.at_once, "id 9030", _pid(9030)),
            Send("PUBREL id 9030", lambda p: packets.pubrel(9030)),
            Expect("PUBCOMP", t.at_once, "id 9030", _pid(9030)),
            Serve(),
        ),
    )


def _half_publish(p: Play) -> bytes:
    whole = packets.publish(p.echo_topic, b"cut short here")
    return whole[: len(whole) // 2]


def closed_mid_packet(t: Timing) -> Scenario:
    return Scenario(
        "closed-mid-packet",
        "4.8 (the network connection closed: the client connects again)",
        "the broker closes halfway through a PUBLISH",
        steps(
            _handshake(t),
            Send("half a PUBLISH", _half_publish),
            Close(),
            ExpectEnd(t.at_once, "the connection ended inside a packet"),
            welcome(ROBUST_DELAY + t.at_once, t),
        ),
    )


def stalled_mid_packet(t: Timing) -> Scenario:
    return Scenario(
        "stalled-mid-packet",
        "4.8 (no number: a read that never ends)",
        "the broker stops halfway through a PUBLISH and keeps the connection open",
        steps(
            _handshake(t),
            Send("half a PUBLISH", _half_publish),
            ExpectEnd(t.socket_timeout + t.at_once, "no more bytes within its socket timeout"),
            welcome(ROBUST_DELAY + t.at_once, t),
        ),
    )


def five_byte_length(t: Timing) -> Scenario:
    return Scenario(
        "length-five-bytes",
        "MQTT-4.8.0-1 (a malformed remaining length, 2.2.3)",
        "a remaining length that runs to a fifth byte",
        steps(
            _handshake(t),
            Send("PUBLISH header with a 5-byte remaining length", lambda p: packets.five_byte_length()),
            ExpectEnd(t.at_once, "a malformed packet: protocol violation"),
            welcome(ROBUST_DELAY + t.at_once, t),
        ),
    )


def length_too_large(t: Timing) -> Scenario:
    return Scenario(
        "length-too-large",
        "2.2.3 (a remaining length larger than what follows)",
        "a PUBLISH whose remaining length promises 100 bytes more than follow",
        steps(
            _handshake(t),
            Send(
                "PUBLISH with a lying length",
                lambda p: packets.lying_length(packets.publish(p.echo_topic, b"short"), 100),
            ),
            ExpectEnd(t.socket_timeout + t.at_once, "the rest never comes within its socket timeout"),
            welcome(ROBUST_DELAY + t.at_once, t),
        ),
    )


def suback_unasked(t: Timing) -> Scenario:
    return Scenario(
        "suback-unasked",
        "MQTT-4.8.0-1 (a packet the client never asked for: protocol violation)",
        "a SUBACK with no SUBSCRIBE (packet id 0x3000, whose bytes read as a PUBLISH header)",
        steps(
            _handshake(t),
            Send("SUBACK id 0x3000", lambda p: packets.suback(0x3000, 0)),
            ExpectEnd(t.at_once, "a SUBACK it never asked for"),
            welcome(ROBUST_DELAY + t.at_once, t),
        ),
    )


def stray_pubrel(t: Timing) -> Scenario:
    return Scenario(
        "pubrel-stray",
        "MQTT-4.3.3-2 (PUBREL answered with PUBCOMP, same packet id)",
        "a PUBREL for a message the board never received",
        steps(
            _handshake(t),
            Send("PUBREL id 2570", lambda p: packets.pubrel(2570)),
            Expect("PUBCOMP", t.at_once, "id 2570", _pid(2570)),
            Send("PUBLISH QoS 0 'after'", lambda p: packets.publish(p.echo_topic, b"after")),
            ExpectAll((_echo(b"after"),), t.at_once),
            Serve(),
        ),
    )


def retained_foreign_topic(t: Timing) -> Scenario:
    return Scenario(
        "retained-unsubscribed",
        "3.3.5 (no number: a server sends what matches a subscription)",
        "on reconnect, a retained message on a topic the board never subscribed to",
        steps(
            _handshake(t),
            Send(
                "retained PUBLISH on another topic",
                lambda p: packets.publish(p.status_topic, b"stale", retain=True),
            ),
            Send("PUBLISH QoS 0 'marker'", lambda p: packets.publish(p.echo_topic, b"marker")),
            # The next thing the board publishes must be the marker's echo, not the stranger's.
            ExpectAll((_echo(b"marker"),), t.at_once),
            Serve(),
        ),
    )


def empty_retained(t: Timing) -> Scenario:
    return Scenario(
        "retained-empty",
        "MQTT-3.3.1-10 (a zero-byte retained message: a delete)",
        "an empty retained PUBLISH on the echo topic",
        steps(
            _handshake(t),
            Send("empty retained PUBLISH", lambda p: packets.publish(p.echo_topic, b"", retain=True)),
            ExpectAll((_echo(b""),), t.at_once),
            Serve(),
        ),
    )


def topic_utf8(t: Timing) -> Scenario:
    return Scenario(
        "topic-utf8",
        "MQTT-1.5.3-1 (a topic of well-formed UTF-8; its length prefix counts bytes, 1.5.3)",
        "the board's topics hold 2-, 3- and 4-byte UTF-8 characters: subscribed and echoed byte-exact",
        steps(
            _handshake(t),
            Send("PUBLISH QoS 0 'utf8' on the echo topic", lambda p: packets.publish(p.echo_topic, b"utf8")),
            ExpectAll((_echo(b"utf8"),), t.at_once),
            Serve(),
        ),
    )


def topic_longest(t: Timing) -> Scenario:
    return Scenario(
        "topic-longest",
        f"MQTT-4.7.3-3 / 2.2.3 (the longest topic umqtt.simple 1.3.4 subscribes to: {LONGEST_TOPIC} bytes)",
        f"an echo topic of {LONGEST_TOPIC} bytes: subscribed, and echoed in a PUBLISH whose remaining "
        "length takes two bytes",
        steps(
            _handshake(t),
            Send(
                "PUBLISH QoS 0 'longest' on the echo topic",
                lambda p: packets.publish(p.echo_topic, b"longest"),
            ),
            ExpectAll((_echo(b"longest"),), t.at_once),
            Serve(),
        ),
    )


# How much longer than the one before each wait after a refusal must be: the firmware doubles
# it; a loaded machine adds about as much to every wait, which brings the ratio down, never up.
GROWTH = 1.3


@dataclass(frozen=True)
class Mark(Step):
    """Note the time now under ``name``: the scripted broker's own record of when something
    happened on the wire, for a later step to compare (``WaitsBackOff``)."""

    name: str

    def describe(self) -> str:
        return f"note the time as {self.name!r}"

    def run(self, play: Play) -> None:
        play.marks[self.name] = time.monotonic()


@dataclass(frozen=True)
class WaitsBackOff(Step):
    """The board's waits after refused SUBSCRIBEs, as the broker saw them: from its SUBACK 0x80
    (mark ``refused-N``) to the board's close of that connection (``closed-N``). Each of refusals
    1..``growing``, in a row, waits at least GROWTH times as long as the one before (the first
    at least half of ``initial``, the board's backoff_initial); refusal
    ``restarted``, the first after a granted SUBSCRIBE, waits at most 1/GROWTH of the last of
    them: the waits started again. The waits are compared with each other, never with seconds."""

    growing: int
    restarted: int
    initial: float  # the board's backoff_initial (s)

    def describe(self) -> str:
        return (
            f"expect the waits after refusals 1..{self.growing} to grow (each at least {GROWTH}x the "
            f"one before), and the wait after refusal {self.restarted} (after a grant) to start again"
        )

    def run(self, play: Play) -> None:
        numbers = [*range(1, self.growing + 1), self.restarted]
        waits = {n: play.marks[f"closed-{n}"] - play.marks[f"refused-{n}"] for n in numbers}
        seen = ", ".join(f"#{n} {waits[n]:.3f}s" for n in numbers)
        why = f"(each from the SUBACK 0x80 to the board's close: {seen})"
        # A floor, not a bound: a board that waits closes no sooner, however loaded the machine.
        # Without it, waits of a few milliseconds (a board that closes at once) could grow by
        # chance.
        if waits[1] < self.initial / 2:
            raise AssertionError(
                f"the board did not wait after a refused SUBSCRIBE: it closed {waits[1]:.3f}s after "
                f"the first refusal, not the {self.initial}s of backoff_initial {why}"
            )
        for n in range(2, self.growing + 1):
            if waits[n] < GROWTH * waits[n - 1]:
                raise AssertionError(
                    f"the board's waits after refused SUBSCRIBEs did not grow: wait #{n} is "
                    f"{waits[n] / waits[n - 1]:.2f} times wait #{n - 1}, not at least {GROWTH} {why}; "
                    "they should double, from backoff_initial up to backoff_max"
                )
        last = waits[self.growing]
        if waits[self.restarted] * GROWTH > last:
            raise AssertionError(
                f"the board's wait after a refusal that followed a granted SUBSCRIBE did not start "
                f"again: wait #{self.restarted} is {waits[self.restarted] / last:.2f} times wait "
                f"#{self.growing}, not at most {1 / GROWTH:.2f} {why}; a granted SUBSCRIBE should "
                "bring the wait back to backoff_initial"
            )


def _refuse(n: int, t: Timing) -> list[Step]:
    """The board's SUBSCRIBE on the connection just taken, refused; the board waits, closes."""
    return [
        Expect("SUBSCRIBE", t.at_once, "to the echo topic at QoS 0", _subscribed),
        Send(
            f"SUBACK 0x80 (refusal #{n})",
            lambda p: packets.suback(p.last.pid if p.last and p.last.pid else 0, 0x80),
        ),
        Mark(f"refused-{n}"),
        ExpectEnd(t.longest_backoff + t.at_once, f"refusal #{n}: it waits, then tries again"),
        Mark(f"closed-{n}"),
    ]


def _connected(timeout: float, t: Timing) -> list[Step]:
    """The board's next connection, accepted (no session kept), up to its SUBSCRIBE."""
    return [
        Accept(timeout),
        Expect("CONNECT", t.at_once, "with clean_session=0", _keeps_session),
        Send("CONNACK 0", lambda p: packets.connack(0)),
    ]


def suback_backoff(t: Timing) -> Scenario:
    # The board's waits come before it closes (echo_client.py subscribe), so the broker times
    # each one alone: what the board waits before its next connection for other reasons
    # (connect_retry.py) comes after the close and is not counted.
    reconnect = t.longest_backoff + ROBUST_DELAY + t.at_once
    return Scenario(
        "suback-refused-backoff",
        "MQTT-3.9.3-2 (return code 0x80, Failure, three times in a row, then granted)",
        "SUBACK 0x80 three times, then granted: the board waits longer after each refusal, echoes "
        "once subscribed, and a later refusal waits as little as the first",
        steps(
            Kick(),
            _connected(t.at_once, t),
            _refuse(1, t),
            _connected(reconnect, t),
            _refuse(2, t),
            _connected(reconnect, t),
            _refuse(3, t),
            welcome(reconnect, t, serve=False),
            Send(
                "PUBLISH QoS 0 'granted' on the echo topic",
                lambda p: packets.publish(p.echo_topic, b"granted"),
            ),
            ExpectAll((_echo(b"granted"),), t.at_once),
            Kick(),
            _connected(reconnect, t),
            _refuse(4, t),
            WaitsBackOff(growing=3, restarted=4, initial=t.backoff_initial),
            welcome(reconnect, t),
        ),
    )


def _subscribed_whole(r: Received, p: Play) -> bool:
    # Its remaining length (packet id, topic length, topic, QoS) as MQTT writes it (2.2.3): for
    # a topic of PAST_ONE_BYTE_TOPIC bytes, 128 in two bytes.
    size = packets.remaining_length(2 + 2 + len(p.echo_topic) + 1)
    return _subscribed(r, p) and r.raw[1 : 1 + len(size)] == size


def topic_past_one_byte(t: Timing) -> Scenario:
    return Scenario(
        "topic-past-one-byte",
        f"2.2.3 / MQTT-4.7.3-3 (a topic of {PAST_ONE_BYTE_TOPIC} bytes: the SUBSCRIBE's remaining "
        "length is 128, two bytes; umqtt.simple 1.3.4 writes one)",
        f"an echo topic of {PAST_ONE_BYTE_TOPIC} bytes, one past what umqtt.simple 1.3.4 can "
        "subscribe to: a well-formed SUBSCRIBE, granted, and the echo",
        steps(
            Kick(),
            _connected(t.at_once, t),
            Expect(
                "SUBSCRIBE",
                t.at_once,
                "to the echo topic at QoS 0, its remaining length in two bytes (80 01)",
                _subscribed_whole,
            ),
            Send("SUBACK 0", lambda p: packets.suback(p.last.pid if p.last and p.last.pid else 0, 0)),
            Expect(
                "PUBLISH",
                t.at_once,
                '"online", retained, on the status topic',
                lambda r, p: r.topic == p.status_topic and r.payload == b"online" and r.retain,
            ),
            Send("PUBLISH QoS 0 'past' on the echo topic", lambda p: packets.publish(p.echo_topic, b"past")),
            ExpectAll((_echo(b"past"),), t.at_once),
            Serve(),
        ),
    )


def socket_leak(t: Timing) -> Scenario:
    return Scenario(
        "reconnect-closes-old-socket",
        "3.14 / 4.8 (no number: the client closes the connection it leaves)",
        "three reconnects: the board closes each connection it leaves",
        steps(
            Kick(),
            welcome(t.at_once, t),
            Kick(),
            welcome(t.at_once, t),
            Kick(),
            welcome(t.at_once, t),
            KickedClosedByBoard(t.at_once),
        ),
    )


@dataclass(frozen=True)
class Last(Step):
    """Let the board's connection last ``seconds`` (pings answered) before the next step: what
    the broker does, as a link that stays up does, not a wait for the board. The firmware takes
    a connection that lasted three times the wait it would now make for one that ended by chance
    (connect_retry.py), and that is the only way a scenario can show it one."""

    seconds: float

    def describe(self) -> str:
        return f"let the connection last {self.seconds:.2f}s"

    def run(self, play: Play) -> None:
        time.sleep(self.seconds)


@dataclass(frozen=True)
class TakeoverWaits(Step):
    """The board's waits before it connects again, as the broker saw them: from the broker's
    close of connection N (mark ``closed-N``) to the board's next CONNECT (``connect-N``).
    ``at_once``: the closes after which it connects again at once, each with what it is (after a
    connection that lasted, the first short one of a row): each at most 1/GROWTH of the row's
    longest wait. ``row``: the closes of short connections in a row after which the board must
    wait (the second, third ... short one): the first at least half of ``initial``
    (backoff_initial), each next at least GROWTH times the one before. Waits are compared with
    each other, never with seconds, except that floor: a board that waits connects no sooner,
    however loaded the machine, and without it reconnects of a few milliseconds each (a storm)
    could grow by chance."""

    at_once: tuple[tuple[int, str], ...]
    row: tuple[int, ...]
    initial: float  # the board's backoff_initial (s)

    def describe(self) -> str:
        return (
            f"expect the board to connect again at once after closes {[n for n, _ in self.at_once]}, "
            f"and to wait after closes {list(self.row)} (short connections in a row), each wait longer"
        )

    def run(self, play: Play) -> None:
        numbers = sorted({*self.row, *(n for n, _ in self.at_once)})
        gaps = {n: play.marks[f"connect-{n}"] - play.marks[f"closed-{n}"] for n in numbers}
        seen = ", ".join(f"#{n} {gaps[n]:.3f}s" for n in numbers)
        why = f"(each from the broker's close to the board's next CONNECT: {seen})"
        first = self.row[0]
        if gaps[first] < self.initial / 2:
            raise AssertionError(
                f"the board did not wait after its second connection in a row lost soon after it was "
                f"made (as a take-over ends them, MQTT-3.1.4-2): it connected again {gaps[first]:.3f}s "
                f"after the broker's close #{first}, not after backoff_initial ({self.initial}s) {why}; "
                "two boards given one client id would take it from each other at once: a take-over storm"
            )
        longest = max(gaps[n] for n in self.row)
        for n, what in self.at_once:
            if gaps[n] * GROWTH > longest:
                raise AssertionError(
                    f"the board did not connect again at once after close #{n} ({what}): it waited "
                    f"{gaps[n] / longest:.2f} times the longest wait of the row, not at most "
                    f"{1 / GROWTH:.2f} {why}; only the second short connection in a row calls for a "
                    "wait, and a connection that lasted starts the row again"
                )
        for before, n in zip(self.row, self.row[1:], strict=False):
            if gaps[n] < GROWTH * gaps[before]:
                raise AssertionError(
                    f"the board's waits after short connections in a row did not grow: the wait after "
                    f"close #{n} is {gaps[n] / gaps[before]:.2f} times the one after close #{before}, "
                    f"not at least {GROWTH} {why}; they should double, from backoff_initial up to "
                    "backoff_max"
                )


def _short(n: int, timeout: float, t: Timing) -> list[Step]:
    """Connection ``n``: taken as a good broker would (subscribed, "online"), then closed at
    once, as a broker closes the connection whose client id another client took."""
    return [
        *welcome(timeout, t, serve=False, mark=f"connect-{n - 1}" if n > 0 else None),
        Close(),
        Mark(f"closed-{n}"),
    ]


def _lasting(n: int, timeout: float, t: Timing, payload: bytes) -> list[Step]:
    """Connection ``n``: taken, let last as long as the board needs to count it as lasting
    (three times its longest wait, and a margin), an echo on it, then closed."""
    return [
        *welcome(timeout, t, serve=False, mark=f"connect-{n - 1}" if n > 0 else None),
        Last(3 * t.longest_backoff + LASTED_MARGIN),
        Send(
            f"PUBLISH QoS 0 {payload!r} on the echo topic",
            lambda p: packets.publish(p.echo_topic, payload),
        ),
        ExpectAll((_echo(payload),), t.at_once),
        Close(),
        Mark(f"closed-{n}"),
    ]


# What a lasting connection is given beyond three times the board's longest wait (s): the broker
# counts from the CONNECT, the board from before it (connect_retry.py's connected_at).
LASTED_MARGIN = 0.25


def taken_over_backoff(t: Timing) -> Scenario:
    # Connections 0 and 4 last; 1, 2, 3 and 5 are short. The board then connects again: at
    # once after 0 (it lasted, whatever row came before the scenario), at once after 1 (the
    # first short one), after backoff_initial after 2, twice that after 3, at once after 4 (it
    # lasted: the row starts again), at once after 5 (the first short one of a new row).
    reconnect = t.longest_backoff + t.at_once
    return Scenario(
        "taken-over-backoff",
        "MQTT-3.1.4-2 (the broker ends the connection whose client id another client took: "
        "three short connections in a row, then one that lasts)",
        "each connection closed soon after it was set up, three in a row: the board connects again at "
        "once after the first, then waits, longer each time; after one that lasted (an echo on it), a "
        "short one again gets a reconnect at once",
        steps(
            Kick(),
            _lasting(0, reconnect, t, b"lasted-0"),
            _short(1, reconnect, t),
            _short(2, reconnect, t),
            _short(3, reconnect, t),
            _lasting(4, reconnect, t, b"lasted-4"),
            _short(5, reconnect, t),
            welcome(reconnect, t, serve=False, mark="connect-5"),
            TakeoverWaits(
                at_once=(
                    (0, "a connection that lasted"),
                    (1, "the first short connection after one that lasted"),
                    (4, "a connection that lasted, after a row of short ones"),
                    (5, "the first short connection of a new row"),
                ),
                row=(2, 3),
                initial=t.backoff_initial,
            ),
            Serve(),
        ),
    )


def takeover_catalogue(t: Timing) -> list[Scenario]:
    """The take-over scenario, on a deploy of its own (tests/rig/test_broker_takeover.py): its
    waits grow only with a ``backoff_max`` above ``backoff_initial``."""
    return [taken_over_backoff(t)]


def subscribe_catalogue(t: Timing) -> list[Scenario]:
    """The scenarios of the board's SUBSCRIBE that need a deploy of their own
    (tests/rig/test_broker_subscribe.py): an echo topic past umqtt.simple's one-byte length,
    and waits after refusals that grow up to a ``backoff_max`` above ``backoff_initial``."""
    return [topic_past_one_byte(t), suback_backoff(t)]


def catalogue(t: Timing) -> list[Scenario]:
    """Every scenario, in the order they are played (the issue's order)."""
    return [
        *(connack_refused(code, t) for code in range(1, 6)),
        connack_late(t),
        suback_failure(t),
        closed_before_subscribe(t),
        pingresp_withheld(t),
        qos1_to_board(t),
        qos2_to_board(t),
        qos1_redelivered(t),
        qos2_redelivered(t),
        closed_mid_packet(t),
        stalled_mid_packet(t),
        five_byte_length(t),
        length_too_large(t),
        suback_unasked(t),
        stray_pubrel(t),
        retained_foreign_topic(t),
        topic_utf8(t),
        topic_longest(t),
        empty_retained(t),
        socket_leak(t),
    ]
