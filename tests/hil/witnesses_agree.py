"""The console against the broker: the firmware's account of its connections must agree with
the broker's records of them.

The broker is the first witness of how a connection began and ended (its CONNACK, its record of
the end); the firmware's ``connected`` and ``disconnected`` event lines are the second. Where
they disagree the firmware misreports its own state, and a person reading the console (or a
check that trusts it) is misled: that is a defect to report, not noise.

``assert_console_agrees_with_broker`` is called by the tests that already make the board connect
and leave (a reset, a goodbye, a lost session, a fault), at a moment the board is back and
settled, so it costs them no more than a look at what both witnesses already gathered.

``assert_status_only_changes`` holds the status topic to the same first witness: each status
message the host saw must answer a change in the board's connection the broker recorded.
"""

from __future__ import annotations

from typing import Any

from rig.board import Board
from rig.broker.record_log import RecordLog
from rig.broker.records import Connack
from rig.deadline import Deadline
from rig.host_client import HostClient
from rig.serialio import SerialLog


def assert_console_agrees_with_broker(
    serial_log: SerialLog,
    records: RecordLog,
    client: str,
    *,
    mark: int,
    since: float,
    timeout: float,
    latest_only: bool = False,
) -> None:
    """Every ``connected`` line since ``since`` names the session present flag of the broker's
    CONNACK it answers, and every ``disconnected clean=True`` line is matched by a connection the
    broker saw end with a DISCONNECT (its records from ``mark`` on).

    The two witnesses trail each other (the board prints after the CONNACK came; the broker's
    log is read by polling), so it waits, at most ``timeout``, until both count as many
    connections. The lines and the CONNACKs are then paired in order; if the counts still differ
    (a broker killed before it wrote its record), the latest of each. Raises AssertionError
    naming each contradiction.

    ``latest_only``: judge only the board's latest connection against the broker's latest
    CONNACK, after a fault, where the broker may have answered attempts the board had already
    given up (a wedged broker, a flapping link): then the counts never agree."""
    deadline = Deadline(timeout)
    while True:
        said = [e for e in serial_log.events() if e.get("t", 0.0) >= since]
        connected = [e for e in said if e["ev"] == "connected"]
        goodbyes = [e for e in said if e["ev"] == "disconnected" and e.get("clean") is True]
        accepted = [c for c in records.connacks(client, after=mark) if c.return_code == 0]
        ended = records.ended(client, after=mark)
        clean_ends = [e for e in ended if e.clean]
        counted = bool(accepted or not connected) if latest_only else len(connected) == len(accepted)
        if (counted and len(goodbyes) <= len(clean_ends)) or deadline.expired:
            break
        # The broker's next CONNACK, or a fifth of a second (its other records, the console).
        records.next(Connack, min(deadline.remaining_or(0.2), 0.2), after=records.mark())
    found = []
    pairs = list(zip(reversed(connected), reversed(accepted), strict=False))[: 1 if latest_only else None]
    for line, connack in reversed(pairs):
        if bool(line.get("session_present")) != connack.session_present:
            found.append(
                f"the console reported connected session_present={_flag(line)} where the broker's "
                f"CONNACK said session_present={int(connack.session_present)} [{connack.describe()}]"
            )
    if len(goodbyes) > len(clean_ends):
        seen = [e.describe() for e in ended]
        found.append(
            f"the console reported {len(goodbyes)} clean disconnect(s), but the broker saw "
            f"{len(clean_ends)} connection(s) of {client!r} end with a DISCONNECT: it saw {seen or 'no end'}"
        )
    assert not found, (
        "the firmware's console contradicts the broker's records (the first witness):\n  "
        + "\n  ".join(found)
        + f"\n  console: {serial_log.path}; broker records: {records.path}"
    )


def _flag(event: dict[str, Any]) -> str:
    value = event.get("session_present")
    return str(int(value)) if isinstance(value, bool) else repr(value)


def assert_status_only_changes(
    mqtt: HostClient, records: RecordLog, board: Board, *, mark: int, since: float
) -> None:
    """The status topic carries the board's changes and nothing else: each ``online`` answers a
    connection the broker accepted, each ``offline`` a goodbye it received, each ``lost`` a
    connection it saw end without one (the will). Status messages that circulate or repeat,
    retained or not, would tell a subscriber of changes that never happened. Judged on what the
    host saw from ``since`` on, against the broker's records from ``mark`` on."""
    topic = board.config.status_topic
    client = board.config.client_id
    said = [m.payload for m in mqtt.messages(topic, since=since)]
    accepted = [c for c in records.connacks(client, after=mark) if c.return_code == 0]
    ended = records.ended(client, after=mark)
    # The connection the board made just before the test began may say its ``online`` after
    # ``since`` (seen under load: the board back from the previous test's restart, its CONNACK
    # before the mark, its online on the host after since). It counts when the host saw no online
    # between that CONNACK and since.
    every = [c for c in records.connacks(client) if c.return_code == 0]
    before = every[: len(every) - len(accepted)]
    late = 0
    if before:
        accepted_at = records.seen(before[-1]) or before[-1].t
        seen_online = [m for m in mqtt.messages(topic, since=accepted_at - 1.0) if m.payload == b"online"]
        late = int(not any(m.t < since for m in seen_online))
    allowed = {
        b"online": (len(accepted) + late, "connection(s) the broker accepted"),
        b"offline": (sum(e.clean for e in ended), "DISCONNECT(s) the broker received"),
        b"lost": (sum(not e.clean for e in ended), "connection(s) the broker saw lost"),
    }
    found = []
    for payload in sorted(set(said)):
        count = said.count(payload)
        most, what = allowed.get(payload, (0, "status the firmware documents"))
        if count > most:
            found.append(f"{payload!r} {count} time(s), for {most} {what}")
    assert not found, (
        f"the status topic {topic!r} carried more than the board's changes: "
        + "; ".join(found)
        + f" (status messages circulating or repeated, retained or not; all it carried: {said}); "
        f"broker records: {records.path}; full log: {mqtt.trace_path}"
    )
