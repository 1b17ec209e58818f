"""A scenario: the steps the scripted broker plays against the board, packet by packet.

A step is one thing a broker does (accept, expect a packet, send bytes, withhold an answer,
close, reset, go back to serving) or one thing it checks. ``Scenario.play`` runs them in order;
every wait is bounded by the step's own timeout, and a failure says which step of which scenario
(and the MQTT 3.1.1 statement it exercises), what was awaited, what the board sent last, and
where the whole conversation is logged.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from rig.deadline import Deadline
from rig.scripted_broker.broker import ScriptedBroker
from rig.scripted_broker.connection import Connection, Ended, ScenarioTimeout, Seen
from rig.scripted_broker.decode import Received

# Packets a scenario never waits for unless it names them: the board's pings (answered by the
# connection unless withheld).
IGNORED = frozenset({"PINGREQ"})


class ScenarioFailed(AssertionError):
    """The board did not do what the scenario expects; the message says where and why."""


@dataclass
class Play:
    """What a scenario being played knows: the board's topics, its current connection, what the
    board sent last, and the connections ``Kick`` ended (to see that the board closes them)."""

    broker: ScriptedBroker
    echo_topic: bytes
    status_topic: bytes
    conn: Connection | None = None
    last: Received | None = None
    kicked: list[Connection] = field(default_factory=list)
    marks: dict[str, float] = field(default_factory=dict)

    def connection(self) -> Connection:
        if self.conn is None:
            raise ScenarioTimeout("the scenario has no connection yet: it needs an Accept step first")
        return self.conn


class Step:
    def describe(self) -> str:
        raise NotImplementedError

    def run(self, play: Play) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class Kick(Step):
    """End every connection the broker is serving (FIN), so that the board connects again."""

    def describe(self) -> str:
        return "close the board's current connection"

    def run(self, play: Play) -> None:
        for conn in play.broker.open_connections():
            play.kicked.append(conn)
            conn.close()


@dataclass(frozen=True)
class Accept(Step):
    timeout: float

    def describe(self) -> str:
        return f"accept the board's next connection within {self.timeout}s"

    def run(self, play: Play) -> None:
        play.conn = play.broker.accept(Deadline(self.timeout))
        play.last = None


# What an expected packet must be: a test of it, given what the scenario knows.
Match = Callable[[Received, Play], bool]


@dataclass(frozen=True)
class Expect(Step):
    """The board's next packet (pings aside) is a ``kind`` that passes ``match``."""

    kind: str
    timeout: float
    what: str = ""
    match: Match | None = None

    def awaited(self) -> str:
        return f"{self.kind}{' ' + self.what if self.what else ''}"

    def describe(self) -> str:
        return f"expect {self.awaited()} within {self.timeout}s"

    def accepts(self, seen: Seen, play: Play) -> bool:
        return (
            isinstance(seen, Received)
            and seen.kind == self.kind
            and (self.match is None or self.match(seen, play))
        )

    def run(self, play: Play) -> None:
        conn = play.connection()
        deadline = Deadline(self.timeout)
        while True:
            seen = conn.expect(self.awaited(), lambda s: True, deadline)
            if isinstance(seen, Received) and seen.kind in IGNORED and self.kind not in IGNORED:
                continue
            if not self.accepts(seen, play):
                raise AssertionError(f"awaited {self.awaited()}, the board sent {seen.describe()}")
            assert isinstance(seen, Received)
            play.last = seen
            return


@dataclass(frozen=True)
class ExpectAll(Step):
    """Each of ``expected`` once, in any order (pings aside): packets the board sends from
    different places of its loop, whose order MQTT does not fix."""

    expected: tuple[Expect, ...]
    timeout: float

    def describe(self) -> str:
        return "expect, in any order, " + ", ".join(e.awaited() for e in self.expected)

    def run(self, play: Play) -> None:
        conn = play.connection()
        deadline = Deadline(self.timeout)
        left = list(self.expected)
        while left:
            awaited = ", ".join(e.awaited() for e in left)
            seen = conn.expect(awaited, lambda s: True, deadline)
            if isinstance(seen, Received) and seen.kind in IGNORED:
                continue
            found = next((e for e in left if e.accepts(seen, play)), None)
            if found is None:
                raise AssertionError(f"awaited {awaited}, the board sent {seen.describe()}")
            left.remove(found)


@dataclass(frozen=True)
class Send(Step):
    """Write bytes: a packet of ``rig.scripted_broker.packets``, whole, in part, or broken."""

    what: str
    build: Callable[[Play], bytes]

    def describe(self) -> str:
        return f"send {self.what}"

    def run(self, play: Play) -> None:
        play.connection().send(self.build(play), self.what)


@dataclass(frozen=True)
class Withhold(Step):
    """Answer no more PINGREQs on this connection, as a broker that went silent."""

    def describe(self) -> str:
        return "withhold PINGRESP"

    def run(self, play: Play) -> None:
        play.connection().answer_pings = False
        play.marks["withheld"] = time.monotonic()


@dataclass(frozen=True)
class Close(Step):
    def describe(self) -> str:
        return "close the connection (FIN)"

    def run(self, play: Play) -> None:
        play.connection().close()


@dataclass(frozen=True)
class Reset(Step):
    def describe(self) -> str:
        return "reset the connection (RST)"

    def run(self, play: Play) -> None:
        play.connection().reset()


@dataclass(frozen=True)
class ExpectEnd(Step):
    """The board ends the connection within ``timeout`` (whatever else it sends first, which
    the scenario does not judge: it may still be writing into a connection it cannot read)."""

    timeout: float
    why: str

    def describe(self) -> str:
        return f"expect the board to close the connection within {self.timeout}s ({self.why})"

    def run(self, play: Play) -> None:
        conn = play.connection()
        if conn.wait_ended(Deadline(self.timeout)) is None:
            raise ScenarioTimeout(
                f"awaited the board's close of connection #{conn.number} ({self.why}) for "
                f"{self.timeout}s; last seen: {conn.last_seen()}"
            )
        play.marks["ended"] = time.monotonic()


@dataclass(frozen=True)
class KickedClosedByBoard(Step):
    """Every connection ``Kick`` ended was closed by the board too: it keeps no socket of a
    connection it left (umqtt.simple 1.3.4 leaks one per reconnect)."""

    timeout: float

    def describe(self) -> str:
        return f"expect the board to close each connection it left, within {self.timeout}s"

    def run(self, play: Play) -> None:
        deadline = Deadline(self.timeout)
        for conn in play.kicked:
            if conn.wait_ended(deadline) is None:
                raise ScenarioTimeout(
                    f"awaited the board's close (FIN) of connection #{conn.number}, which the broker "
                    f"closed and the board replaced, for {self.timeout}s: the board still holds its "
                    f"socket (a leak); last seen there: {conn.last_seen()}"
                )


@dataclass(frozen=True)
class Serve(Step):
    def describe(self) -> str:
        return "serve the connection as a well-behaved broker"

    def run(self, play: Play) -> None:
        play.connection().serve()


@dataclass(frozen=True)
class Scenario:
    """One behaviour of a broker, played against the board. ``statement``: the MQTT 3.1.1
    normative statement it exercises (``MQTT-x.y.z-n``), or the section where none applies."""

    name: str
    statement: str
    title: str
    steps: tuple[Step, ...]

    def play(self, broker: ScriptedBroker, echo_topic: bytes, status_topic: bytes) -> Play:
        play = Play(broker, echo_topic, status_topic)
        broker.log(f"scenario {self.name} ({self.statement}): {self.title}")
        with broker.scripted():
            for number, step in enumerate(self.steps, start=1):
                broker.log(f"step {number}/{len(self.steps)}: {step.describe()}")
                try:
                    step.run(play)
                except AssertionError as e:
                    raise ScenarioFailed(
                        f"scenario {self.name} ({self.statement}: {self.title}), step {number} of "
                        f"{len(self.steps)} ({step.describe()}): {e}; full log: {broker.log_path}"
                    ) from e
        broker.log(f"scenario {self.name}: passed")
        return play


def steps(*parts: Step | Sequence[Step]) -> tuple[Step, ...]:
    """Steps and sequences of steps, flattened."""
    out: list[Step] = []
    for part in parts:
        out.extend([part] if isinstance(part, Step) else part)
    return tuple(out)


__all__ = ["Ended", "Play", "Scenario", "ScenarioFailed", "ScenarioTimeout", "Step"]
