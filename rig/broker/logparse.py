"""Log dialects: turn one broker log line into a ``ClientEvent``, or None.

Each dialect knows only the wording of one broker version, verified against the real broker; a
line it does not recognise is ignored rather than guessed at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from rig.broker.events import ClientEvent, EventKind


class LogDialect(Protocol):
    """How one broker writes client events into its log."""

    @property
    def audited(self) -> frozenset[EventKind]:
        """The event kinds this broker's log records at all; others can never be waited for."""
        ...

    def parse(self, line: str) -> ClientEvent | None: ...


@dataclass(frozen=True)
class _Rule:
    kind: EventKind
    pattern: re.Pattern[str]
    # Used when the pattern has no "why" group.
    detail: str = ""


class _RuleDialect:
    """A dialect as an ordered list of anchored patterns over the message part of a line."""

    _prefix: re.Pattern[str]
    _rules: tuple[_Rule, ...]

    @property
    def audited(self) -> frozenset[EventKind]:
        return frozenset(rule.kind for rule in self._rules)

    def parse(self, line: str) -> ClientEvent | None:
        head = self._prefix.match(line)
        message = line[head.end() :] if head else line
        for rule in self._rules:
            found = rule.pattern.match(message)
            if found:
                groups = found.groupdict()
                detail = groups.get("why") or rule.detail
                return ClientEvent(rule.kind, groups["cid"], detail, line)
        return None


class MosquittoDialect(_RuleDialect):
    """mosquitto 2.0 with ``log_type all``, ``connection_messages true`` and ISO timestamps.

    mosquitto 2.0 does not log the publication of a will, so WILL_PUBLISHED is not audited: a test
    that needs it subscribes to the will topic.
    """

    _prefix = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d: ")
    _rules = (
        _Rule(
            EventKind.CONNECTED,
            re.compile(r"New client connected from \S+ as (?P<cid>.+) \(p\d+, c\d+, k\d+(?:, u'.*')?\)\.$"),
            "connected",
        ),
        _Rule(
            EventKind.DISCONNECT_RECEIVED, re.compile(r"Received DISCONNECT from (?P<cid>.+)$"), "DISCONNECT"
        ),
        _Rule(
            EventKind.CLOSED_UNCLEAN,
            re.compile(
                r"Client (?P<cid>.+) (?P<why>closed its connection|has exceeded timeout, disconnecting"
                r"|already connected, closing old connection|disconnected due to [a-z ]+"
                r"|has been disconnected by administrative action)\.$"
            ),
        ),
        _Rule(
            EventKind.CLOSED_UNCLEAN,
            re.compile(r"(?P<why>Socket error) on client (?P<cid>.+), disconnecting\.$"),
        ),
        _Rule(
            EventKind.CLOSED_UNCLEAN,
            re.compile(r"(?P<why>Bad socket read/write) on client (?P<cid>.+?): .*$"),
        ),
    )


class AmqttDialect(_RuleDialect):
    """amqtt 0.12 at DEBUG level, in the format set by ``rig.broker.amqtt_runner``.

    amqtt logs the outcome of its disconnect waiter: the DISCONNECT packet for a clean goodbye,
    ``None`` when the stream ended without one, so the two can be told apart. amqtt never closes
    a connection whose keepalive expired (its broker handler ignores read timeouts), so a
    CLOSED_UNCLEAN never comes from a keepalive timeout there.
    """

    _prefix = re.compile(r"\S+ \S+ [A-Z]+ \[[^\]]+\] ")
    _rules = (
        _Rule(EventKind.CONNECTED, re.compile(r"(?P<cid>.+) Start messages handling$"), "connected"),
        _Rule(
            EventKind.DISCONNECT_RECEIVED,
            re.compile(r"(?P<cid>.+) Result from wait_disconnect: DisconnectPacket\("),
            "DISCONNECT",
        ),
        _Rule(
            EventKind.CLOSED_UNCLEAN,
            re.compile(r"(?P<cid>.+) Result from wait_disconnect: None$"),
            "connection ended without DISCONNECT",
        ),
        _Rule(
            EventKind.WILL_PUBLISHED,
            re.compile(r"Client \(client id=(?P<cid>.+)\) disconnected abnormally, sending will message$"),
            "will message sent",
        ),
    )
