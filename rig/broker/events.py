"""What a broker's log says happened to one client: typed events that keep their raw log line."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class EventKind(str, Enum):
    """The client lifecycle events a broker log can witness."""

    CONNECTED = "connected"
    # The broker read a DISCONNECT packet: the client said goodbye, so no will is published.
    DISCONNECT_RECEIVED = "disconnect_received"
    # The connection ended without a DISCONNECT: socket closed or reset, keepalive expired,
    # protocol error, or taken over by a newer connection with the same client id.
    CLOSED_UNCLEAN = "closed_unclean"
    WILL_PUBLISHED = "will_published"


@dataclass(frozen=True)
class ClientEvent:
    """One event parsed from one broker log line.

    ``detail`` says which variant the broker logged (e.g. "closed its connection"), ``line`` is the
    raw log line, kept so that a failing test can quote the broker's own words.
    """

    kind: EventKind
    client_id: str
    detail: str
    line: str
