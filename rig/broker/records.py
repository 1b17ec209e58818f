"""What a broker itself received from and answered to each client: typed records.

One record per packet or event that decides a verdict on sessions and subscriptions: the
CONNECT (with its clean-session flag, keepalive and will), the CONNACK (session present), each
SUBSCRIBE and UNSUBSCRIBE with its topics, each PINGREQ, a DISCONNECT, and how the connection
ended. mosquitto's records are parsed from its log (``rig.broker.mosquitto_records``); amqtt's
are written by a plugin inside the broker (``rig.broker.amqtt_plugin``) as JSON lines in the
shape ``to_json`` gives, and read back with ``from_json``: writer and readers share these classes,
so they cannot disagree on a key.

``t`` is the broker's clock where it has one (mosquitto logs whole seconds), ``evidence`` the
broker's own words (mosquitto's log lines; empty for amqtt, whose plugin sees the packets).

``epoch`` says which run of the broker wrote a record: the broker's file counts its starts, and
every record carries the number of the start it came after (1 for the first run the file holds,
0 before any). A restart gives the new run the next number, so a test that restarts the broker
can tell its records from those the old run wrote while it went down (a client that reconnects
to a broker that is shutting down gets a CONNACK and a SUBACK from it, after any mark the test
took): mosquitto's run begins at its "mosquitto version ... running" line
(``rig.broker.mosquitto_records``), amqtt's plugin stamps each record with its own run
(``rig.broker.amqtt_plugin``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, ClassVar


class RecordKind(str, Enum):
    CONNECT = "connect"
    CONNACK = "connack"
    SUBSCRIBE = "subscribe"
    UNSUBSCRIBE = "unsubscribe"
    PINGREQ = "pingreq"
    DISCONNECT = "disconnect"
    ENDED = "ended"
    BROKER_STARTED = "broker_started"
    BROKER_STOPPED = "broker_stopped"


class EndReason(str, Enum):
    """How a connection ended, as the broker saw it."""

    # The client sent DISCONNECT: a goodbye, so no will.
    DISCONNECT = "disconnect"
    # The socket closed (FIN or RST) without a DISCONNECT.
    CLOSED = "closed"
    KEEPALIVE_TIMEOUT = "keepalive_timeout"
    PROTOCOL_ERROR = "protocol_error"
    SOCKET_ERROR = "socket_error"
    # A newer connection with the same client id replaced this one.
    TAKEN_OVER = "taken_over"
    OTHER = "other"


@dataclass(frozen=True)
class Will:
    topic: str
    qos: int
    retain: bool


@dataclass(frozen=True)
class TopicFilter:
    topic: str
    qos: int


@dataclass(frozen=True)
class BrokerRecord:
    """Base of every record: which client (empty for the broker's own start and stop), and
    which run of the broker (``epoch``, see the module)."""

    kind: ClassVar[RecordKind]
    client: str
    t: float = 0.0
    evidence: str = field(default="", compare=False)
    epoch: int = 0

    def describe(self) -> str:
        """One line for a timeline or a failure message, naming the broker's run."""
        return f"{self.what()} [run {self.epoch}]"

    def what(self) -> str:
        """The packet or event, without the run."""
        return f"{self.kind.value.upper()} {self.client}"


@dataclass(frozen=True)
class Connect(BrokerRecord):
    kind: ClassVar[RecordKind] = RecordKind.CONNECT
    clean_session: bool = True
    keepalive: int = 0
    will: Will | None = None
    username: str | None = None

    def what(self) -> str:
        will = f"will={self.will.topic} q{self.will.qos} r{int(self.will.retain)}" if self.will else "no will"
        return (
            f"CONNECT {self.client} clean_session={int(self.clean_session)} keepalive={self.keepalive} {will}"
        )


@dataclass(frozen=True)
class Connack(BrokerRecord):
    kind: ClassVar[RecordKind] = RecordKind.CONNACK
    session_present: bool = False
    return_code: int = 0

    def what(self) -> str:
        return f"CONNACK to {self.client} session_present={int(self.session_present)} rc={self.return_code}"


@dataclass(frozen=True)
class Subscribe(BrokerRecord):
    kind: ClassVar[RecordKind] = RecordKind.SUBSCRIBE
    topics: tuple[TopicFilter, ...] = ()

    def what(self) -> str:
        return f"SUBSCRIBE from {self.client}: " + ", ".join(f"{f.topic} q{f.qos}" for f in self.topics)


@dataclass(frozen=True)
class Unsubscribe(BrokerRecord):
    kind: ClassVar[RecordKind] = RecordKind.UNSUBSCRIBE
    topics: tuple[str, ...] = ()

    def what(self) -> str:
        return f"UNSUBSCRIBE from {self.client}: " + ", ".join(self.topics)


@dataclass(frozen=True)
class PingReq(BrokerRecord):
    kind: ClassVar[RecordKind] = RecordKind.PINGREQ

    def what(self) -> str:
        return f"PINGREQ from {self.client}"


@dataclass(frozen=True)
class Disconnect(BrokerRecord):
    kind: ClassVar[RecordKind] = RecordKind.DISCONNECT

    def what(self) -> str:
        return f"DISCONNECT from {self.client}"


@dataclass(frozen=True)
class Ended(BrokerRecord):
    kind: ClassVar[RecordKind] = RecordKind.ENDED
    how: EndReason = EndReason.OTHER
    detail: str = ""

    @property
    def clean(self) -> bool:
        return self.how is EndReason.DISCONNECT

    def what(self) -> str:
        return f"ENDED {self.client}: {self.how.value} ({self.detail})"


@dataclass(frozen=True)
class BrokerStarted(BrokerRecord):
    kind: ClassVar[RecordKind] = RecordKind.BROKER_STARTED

    def what(self) -> str:
        return "broker started"


@dataclass(frozen=True)
class BrokerStopped(BrokerRecord):
    kind: ClassVar[RecordKind] = RecordKind.BROKER_STOPPED

    def what(self) -> str:
        return "broker stopping"


RECORD_CLASSES: dict[RecordKind, type[BrokerRecord]] = {
    cls.kind: cls
    for cls in (
        Connect,
        Connack,
        Subscribe,
        Unsubscribe,
        PingReq,
        Disconnect,
        Ended,
        BrokerStarted,
        BrokerStopped,
    )
}


class BadRecord(ValueError):
    """A JSON record that is not one of ours (a different rig version wrote it, or a bug)."""


def to_json(record: BrokerRecord) -> dict[str, Any]:
    """A JSON-ready dict: ``kind`` plus the record's fields."""
    return {"kind": record.kind.value, **dataclasses.asdict(record)}


def from_json(data: dict[str, Any]) -> BrokerRecord:
    """The record ``to_json`` gave ``data`` for; BadRecord naming the problem otherwise."""
    try:
        cls = RECORD_CLASSES[RecordKind(data["kind"])]
        fields = {k: v for k, v in data.items() if k != "kind"}
        if cls is Connect and fields.get("will") is not None:
            fields["will"] = Will(**fields["will"])
        if cls is Subscribe:
            fields["topics"] = tuple(TopicFilter(**f) for f in fields.get("topics", ()))
        if cls is Unsubscribe:
            fields["topics"] = tuple(fields.get("topics", ()))
        if cls is Ended:
            fields["how"] = EndReason(fields.get("how", EndReason.OTHER.value))
        return cls(**fields)
    except (KeyError, TypeError, ValueError) as e:
        raise BadRecord(f"not a broker record: {data!r} ({e})") from e
