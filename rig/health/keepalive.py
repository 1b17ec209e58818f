"""The broker's side of keepalive: a board that stays silent past 1.5 keepalives is dropped
(MQTT 3.1.1, 3.1.2.10), and the broker logs it. Watching the broker's log for that over several
keepalive periods proves the firmware pings on its own when it has nothing else to send."""

from __future__ import annotations

import time

from rig.broker import Broker, EventKind
from rig.broker.events import ClientEvent
from rig.deadline import Deadline
from rig.health.failures import KeepaliveExpired

# The broker's log is a file: nothing to block on, so it is read this often during the watch.
POLL_S = 0.05


def ended(events: list[ClientEvent]) -> list[ClientEvent]:
    """The events among ``events`` that end or replace a connection."""
    return [e for e in events if e.kind in (EventKind.CLOSED_UNCLEAN, EventKind.DISCONNECT_RECEIVED)]


def watch_connection(broker: Broker, client_id: str, keepalive: float, seconds: float, since: int) -> None:
    """Return after ``seconds`` during which the broker kept ``client_id`` connected; raise
    ``KeepaliveExpired`` as soon as its log says the connection ended (naming how, with the
    broker's own line: "has exceeded timeout" is the keepalive running out)."""
    deadline = Deadline(seconds)
    started = time.monotonic()
    while True:
        gone = ended(broker.client_events(client_id, since=since))
        if gone:
            first = gone[0]
            raise KeepaliveExpired(
                f"the broker ended the board's connection {time.monotonic() - started:.1f}s into a "
                f"{seconds:g}s watch with keepalive {keepalive:g}s and no traffic: {first.detail} (an "
                f"idle client must ping within each keepalive: the broker drops one that does not, and "
                f"a board hears nothing back from a broker it does not ping)\n"
                f"  broker log: {first.line}\n  full log: {broker.log_path}"
            )
        if deadline.expired:
            return
        time.sleep(deadline.remaining_or(POLL_S))
