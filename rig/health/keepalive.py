"""The broker's side of keepalive: a board that stays silent past 1.5 keepalives is dropped
(MQTT 3.1.1, 3.1.2.10), and the broker's records say how its connection ended. Watching them over
several keepalive periods proves the firmware pings on its own when it has nothing else to send."""

from __future__ import annotations

import time

from rig.broker.record_log import After, RecordLog
from rig.broker.records import Ended
from rig.health.failures import KeepaliveExpired


def watch_connection(
    records: RecordLog, client_id: str, keepalive: float, seconds: float, *, after: After
) -> None:
    """Return after ``seconds`` during which the broker kept ``client_id`` connected; raise
    ``KeepaliveExpired`` as soon as its records say the connection ended after ``after`` (a
    ``mark()``), naming how, with the broker's own words (a keepalive timeout is the keepalive
    running out). Raises ``RecordsUnavailable`` when the broker gives no records."""
    started = time.monotonic()
    gone = records.next(Ended, seconds, client=client_id, after=after)
    if gone is None:
        return
    evidence = f"\n  broker's words: {gone.evidence}" if gone.evidence else ""
    raise KeepaliveExpired(
        f"the broker ended the board's connection {time.monotonic() - started:.1f}s into a "
        f"{seconds:g}s watch with keepalive {keepalive:g}s and no traffic: [{gone.describe()}] (an "
        f"idle client must ping within each keepalive: the broker drops one that does not, and "
        f"a board hears nothing back from a broker it does not ping){evidence}\n"
        f"  records: {records.path} (the broker's own: {records.source})"
    )
