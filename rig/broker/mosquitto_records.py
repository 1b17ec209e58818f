"""Broker records from mosquitto 2.0's log (``log_type all``, ``connection_messages true``).

The wording below was checked against mosquitto 2.0.11 on raw MQTT clients, and stays checked:
tests/rig/test_broker_records.py on the real broker, test_broker_record_log.py on these lines.
Some packets take several lines, and only the first names the client:

    New client connected from 127.0.0.1:50834 as a-clean (p2, c1, k30, u'bob').
    Will message specified (3 bytes) (r1, q1).        <- or "No will message specified."
    <TAB>w/a                                           <- the will topic
    Sending CONNACK to a-clean (0, 0)                 <- (session present, return code)
    Received SUBSCRIBE from a-clean
    <TAB>t/1 (QoS 1)                                   <- one per topic filter, each followed
    a-clean 1 t/1                                      <- by the "subscribe" log type's line
    Sending SUBACK to a-clean
    Received UNSUBSCRIBE from a-clean
    <TAB>t/1
    Sending UNSUBACK to a-clean

mosquitto handles one packet at a time in one thread and writes these lines in order, so the
parser keeps the open CONNECT, SUBSCRIBE or UNSUBSCRIBE and closes it at its answer (CONNACK,
SUBACK, UNSUBACK) or at any line that does not continue it. A line it does not know is skipped,
never guessed at.

Each run of the broker begins at its "mosquitto version 2.0.11 running" line (a BrokerStarted
record); the parser counts them and stamps every record with the run it belongs to (``epoch``,
``rig.broker.records``). Every start appends to the same log, and the rig stops one run before
it starts the next, so the order of the lines is the order of the runs.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Iterable
from dataclasses import replace
from enum import Enum

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

_STAMP = re.compile(r"(?P<stamp>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d): ")
_CONNECTED = re.compile(
    r"New client connected from \S+ as (?P<cid>.+) \(p\d+, c(?P<clean>[01]), k(?P<keepalive>\d+)"
    r"(?:, u'(?P<user>.*)')?\)\.$"
)
_WILL = re.compile(r"Will message specified \(\d+ bytes\) \(r(?P<retain>[01]), q(?P<qos>[0-2])\)\.$")
_NO_WILL = "No will message specified."
_CONNACK = re.compile(r"Sending CONNACK to (?P<cid>.+) \((?P<present>[01]), (?P<rc>\d+)\)$")
_SUBSCRIBE = re.compile(r"Received SUBSCRIBE from (?P<cid>.+)$")
_SUB_TOPIC = re.compile(r"\t(?P<topic>.*) \(QoS (?P<qos>\d)\)$")
_UNSUBSCRIBE = re.compile(r"Received UNSUBSCRIBE from (?P<cid>.+)$")
_CONTINUED = re.compile(r"\t(?P<topic>.*)$")
_PINGREQ = re.compile(r"Received PINGREQ from (?P<cid>.+)$")
_DISCONNECT = re.compile(r"Received DISCONNECT from (?P<cid>.+)$")
_RUNNING = re.compile(r"mosquitto version \S+ running$")
_TERMINATING = re.compile(r"mosquitto version \S+ terminating$")
# How a connection ended. "Client X disconnected." follows a received DISCONNECT.
_ENDINGS: tuple[tuple[re.Pattern[str], EndReason], ...] = (
    (re.compile(r"Client (?P<cid>.+) (?P<why>disconnected)\.$"), EndReason.DISCONNECT),
    (re.compile(r"Client (?P<cid>.+) (?P<why>closed its connection)\.$"), EndReason.CLOSED),
    (
        re.compile(r"Client (?P<cid>.+) (?P<why>has exceeded timeout), disconnecting\.$"),
        EndReason.KEEPALIVE_TIMEOUT,
    ),
    (
        re.compile(r"Client (?P<cid>.+) (?P<why>already connected), closing old connection\.$"),
        EndReason.TAKEN_OVER,
    ),
    (
        re.compile(r"Client (?P<cid>.+) disconnected due to (?P<why>protocol error|malformed packet)\.$"),
        EndReason.PROTOCOL_ERROR,
    ),
    (re.compile(r"(?P<why>Socket error) on client (?P<cid>.+), disconnecting\.$"), EndReason.SOCKET_ERROR),
    (re.compile(r"(?P<why>Bad socket read/write) on client (?P<cid>.+?): .*$"), EndReason.SOCKET_ERROR),
    (re.compile(r"Client (?P<cid>.+) disconnected: (?P<why>.+)\.$"), EndReason.SOCKET_ERROR),
    (
        re.compile(
            r"Client (?P<cid>.+) (?P<why>disconnected due to [a-z ()]+|disconnected, not authorised"
            r"|has been disconnected by administrative action)\.$"
        ),
        EndReason.OTHER,
    ),
)


class _Part(Enum):
    """Whether a line belongs to the open packet, and whether it is the packet's last."""

    NO = 0
    MORE = 1
    LAST = 2


@functools.lru_cache(maxsize=64)
def _clock(stamp: str) -> float:
    # mosquitto formats its stamp with strftime in local time, to the second. Cached: the lines
    # of one second share a stamp, and strptime + mktime (which stats /etc/localtime on every
    # call) were a third of a busy board's pytest CPU (benchmarks/bench_lab_scale.py).
    return float(time.mktime(time.strptime(stamp, "%Y-%m-%dT%H:%M:%S")))


def runs_in(lines: Iterable[str]) -> int:
    """How many runs of the broker the log ``lines`` hold: the epoch of the records after them."""
    # The cheap test first: a long log is mostly PUBLISH lines.
    return sum(1 for line in lines if line.endswith(" running") and _RUNNING.match(_message(line)))


def _message(line: str) -> str:
    stamp = _STAMP.match(line)
    return line[stamp.end() :] if stamp else line


class MosquittoRecordParser:
    """Turns mosquitto's log lines, fed in order, into ``BrokerRecord``s.

    Lifecycle: one parser per log follower, created with the epoch of the run that wrote the log
    up to where it starts (``runs_in``); ``feed(lines)`` returns the records those lines
    complete. A packet still open at the end of a read (its answer not logged yet) is returned by
    a later ``feed``.
    """

    def __init__(self, epoch: int = 0) -> None:
        self.epoch = epoch
        self._open: BrokerRecord | None = None
        self._open_lines: list[str] = []

    def feed(self, lines: list[str]) -> list[BrokerRecord]:
        out: list[BrokerRecord] = []
        for line in lines:
            out.extend(self._line(line))
        return out

    def _close(self) -> list[BrokerRecord]:
        record, self._open = self._open, None
        if record is None:
            return []
        evidence, self._open_lines = "\n".join(self._open_lines), []
        return [replace(record, evidence=evidence, epoch=self.epoch)]

    def _line(self, line: str) -> list[BrokerRecord]:
        stamp = _STAMP.match(line)
        message = line[stamp.end() :] if stamp else line
        t = _clock(stamp.group("stamp")) if stamp else 0.0
        part = self._continues(message)
        if part is not _Part.NO:
            self._open_lines.append(line)
            # The broker's answer ends the packet: hand it out now, not at the next line, which
            # may come much later.
            return self._close() if part is _Part.LAST else []
        done = self._close()
        record, keep_open = self._start(message, t)
        if record is None:
            return done
        if isinstance(record, BrokerStarted):
            self.epoch += 1
        if keep_open:
            self._open, self._open_lines = record, [line]
            return done
        return [*done, replace(record, evidence=line, epoch=self.epoch)]

    def _continues(self, message: str) -> _Part:
        """Add ``message`` to the open record if it belongs to it."""
        current = self._open
        if isinstance(current, Connect):
            will = _WILL.match(message)
            if will:
                self._open = replace(
                    current, will=Will("", int(will.group("qos")), will.group("retain") == "1")
                )
                return _Part.MORE
            if message == _NO_WILL:
                return _Part.MORE
            topic = _CONTINUED.match(message)
            if topic and current.will is not None and not current.will.topic:
                self._open = replace(current, will=replace(current.will, topic=topic.group("topic")))
                return _Part.MORE
        if isinstance(current, Subscribe):
            topic = _SUB_TOPIC.match(message)
            if topic:
                added = TopicFilter(topic.group("topic"), int(topic.group("qos")))
                self._open = replace(current, topics=(*current.topics, added))
                return _Part.MORE
            if message == f"Sending SUBACK to {current.client}":
                return _Part.LAST
            # The "subscribe" log type's own line for each filter: "client qos topic".
            if message.startswith(f"{current.client} "):
                return _Part.MORE
        if isinstance(current, Unsubscribe):
            topic = _CONTINUED.match(message)
            if topic:
                self._open = replace(current, topics=(*current.topics, topic.group("topic")))
                return _Part.MORE
            if message == f"Sending UNSUBACK to {current.client}":
                return _Part.LAST
            if message.startswith(f"{current.client} "):
                return _Part.MORE
        return _Part.NO

    def _start(self, message: str, t: float) -> tuple[BrokerRecord | None, bool]:
        """The record ``message`` begins, and whether more lines may belong to it."""
        found = _CONNECTED.match(message)
        if found:
            record: BrokerRecord = Connect(
                found.group("cid"),
                t,
                clean_session=found.group("clean") == "1",
                keepalive=int(found.group("keepalive")),
                username=found.group("user"),
            )
            return record, True
        found = _SUBSCRIBE.match(message)
        if found:
            return Subscribe(found.group("cid"), t), True
        found = _UNSUBSCRIBE.match(message)
        if found:
            return Unsubscribe(found.group("cid"), t), True
        found = _CONNACK.match(message)
        if found:
            return (
                Connack(
                    found.group("cid"),
                    t,
                    session_present=found.group("present") == "1",
                    return_code=int(found.group("rc")),
                ),
                False,
            )
        for pattern, simple in ((_PINGREQ, PingReq), (_DISCONNECT, Disconnect)):
            found = pattern.match(message)
            if found:
                return simple(found.group("cid"), t), False
        for pattern, how in _ENDINGS:
            found = pattern.match(message)
            if found:
                return Ended(found.group("cid"), t, how=how, detail=found.group("why")), False
        if _RUNNING.match(message):
            return BrokerStarted("", t), False
        if _TERMINATING.match(message):
            return BrokerStopped("", t), False
        return None, False
