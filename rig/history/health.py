"""Board health, in LAVA's words: good, suspect, bad, maintenance, retired.

A board's state is computed from the store, run by run, newest first: a run in which the board
had an infrastructure result (port gone, run killed, broker down) counts against it, any other
run ends the count. ``bad_after`` such runs in a row make it bad (out of rotation); fewer,
suspect; none, good. A person may set maintenance or retired (with a reason), which hold until
they set good again; setting good also forgives the results stored before it.

``out_of_rotation`` decides which of a set of boards the gate and ``tag:`` claims skip, and
trips the safety valve (``ValveTripped``) rather than let the rig take out more than
``max_share`` of them on its own. ``by_fewest_failures`` orders boards for a claim.
"""

from __future__ import annotations

import getpass
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from rig.errors import ConfigError, InfrastructureError
from rig.history.models import BoardState, Result, Run
from rig.settings import option, parse_count

if TYPE_CHECKING:
    from rig.history.store import Store

GOOD, SUSPECT, BAD, MAINTENANCE, RETIRED = "good", "suspect", "bad", "maintenance", "retired"
STATES = (GOOD, SUSPECT, BAD, MAINTENANCE, RETIRED)
HAND_SET = (GOOD, MAINTENANCE, RETIRED)
OUT = (BAD, MAINTENANCE, RETIRED)
# How many of a board's newest runs "recent failures" (a claim's preference) looks at.
RECENT_RUNS = 10


@dataclass(frozen=True)
class Health:
    """One board's state, why, and since when (None: nothing stored yet). ``recent_failures``:
    its runs with an infrastructure result among its newest ``RECENT_RUNS``."""

    board: str
    state: str
    why: str
    since: datetime | None
    set_by: str = ""
    recent_failures: int = 0

    @property
    def out(self) -> bool:
        return self.state in OUT

    def describe(self) -> str:
        """``bad since 2026-12-06 05:40 UTC: 3 infrastructure failures in a row (last: ...)``"""
        when = f" since {self.since:%Y-%m-%d %H:%M} UTC" if self.since is not None else ""
        who = f" (set by {self.set_by})" if self.set_by else ""
        return f"{self.state}{when}: {self.why}{who}"


class ValveTripped(InfrastructureError):
    """More boards would be taken out than the lab allows: the run stops instead of running on
    what is left (a broken rig, not a broken lab, is the likelier cause)."""

    def __init__(self, out: Sequence[Health], total: int, max_share: float) -> None:
        self.out = tuple(out)
        names = "; ".join(f"{h.board}: {h.describe()}" for h in out)
        super().__init__(
            f"health safety valve: {len(out)} of {total} boards would be taken out of rotation "
            f"({len(out) / total:.0%}, more than the allowed {max_share:.0%}); the run stops "
            f"instead. Look at the rig and these boards: {names}. A board put back by hand "
            "(rig lab health BOARD --set good) counts as good again"
        )


def _aware(moment: datetime) -> datetime:
    # SQLite keeps no time zone: what was written is UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def _runs(session: Session, board: str, after: datetime | None) -> list[tuple[datetime, bool, str]]:
    """The board's runs, newest first: when, whether it had an infrastructure result, and the
    first such result's message."""
    query = (
        select(Run.id, Run.started, Result.failure, Result.message).join(Result).where(Result.board == board)
    )
    if after is not None:
        query = query.where(Run.started >= after)
    runs: dict[int, tuple[datetime, bool, str]] = {}
    for run_id, started, failure, message in session.execute(query.order_by(Run.started.desc(), Result.id)):
        _, infra, why = runs.get(run_id, (started, False, ""))
        if failure == "infrastructure" and not infra:
            infra, why = True, message
        runs[run_id] = (_aware(started), infra, why)
    return sorted(runs.values(), key=lambda r: r[0], reverse=True)


def board_health(store: Store, board: str, bad_after: int) -> Health:
    """``board``'s state now, from the store."""
    with Session(store.engine) as session:
        hand = session.get(BoardState, board)
        forgiven = _aware(hand.since) if hand is not None else None
        runs = _runs(session, board, forgiven)
    recent = sum(1 for _, infra, _ in runs[:RECENT_RUNS] if infra)
    if hand is not None and hand.state != GOOD:
        return Health(board, hand.state, hand.why, _aware(hand.since), hand.set_by, recent)
    streak = 0
    for _, infra, _ in runs:
        if not infra:
            break
        streak += 1
    if streak == 0:
        if runs:
            return Health(board, GOOD, "its last run had no infrastructure failure", runs[0][0], "", recent)
        if hand is not None:
            return Health(board, GOOD, hand.why, _aware(hand.since), hand.set_by, recent)
        return Health(board, GOOD, "no run stored yet", None, "", recent)
    first_of_streak = runs[streak - 1][0]
    last = runs[0][2] or "no message"
    plural = "s" if streak > 1 else ""
    why = f"{streak} infrastructure failure{plural} in a row (last: {last})"
    return Health(board, BAD if streak >= bad_after else SUSPECT, why, first_of_streak, "", recent)


def lab_health(store: Store, boards: Iterable[str], bad_after: int) -> list[Health]:
    return [board_health(store, board, bad_after) for board in boards]


def set_state(store: Store, board: str, state: str, why: str, set_by: str | None = None) -> Health:
    """Set ``board`` to ``state`` by hand (good, maintenance, retired). Maintenance and retired
    need a reason. Raises ``ConfigError``."""
    if state not in HAND_SET:
        raise ConfigError("--set", "state", f"{state!r}: a person sets one of {', '.join(HAND_SET)}")
    if state != GOOD and not why.strip():
        raise ConfigError("--why", "why", f'setting {board} to {state} needs a reason (--why "...")')
    who = set_by or getpass.getuser()
    now = datetime.now(timezone.utc)
    with Session(store.engine) as session, session.begin():
        row = session.get(BoardState, board)
        if row is None:
            session.add(
                BoardState(board=board, state=state, why=why or "set good by hand", since=now, set_by=who)
            )
        else:
            row.state, row.why, row.since, row.set_by = state, why or "set good by hand", now, who
    return Health(board, state, why or "set good by hand", now, who)


def out_of_rotation(healths: Sequence[Health], max_share: float) -> list[Health]:
    """The boards of ``healths`` to skip. Raises ``ValveTripped`` when the boards the rig itself
    found bad are more than ``max_share`` of those a person has not taken out."""
    out = [h for h in healths if h.out]
    in_service = [h for h in healths if h.state not in (MAINTENANCE, RETIRED)]
    bad = [h for h in in_service if h.state == BAD]
    if bad and len(bad) > math.floor(max_share * len(in_service) + 1e-9):
        raise ValveTripped(bad, len(in_service), max_share)
    return out


def by_fewest_failures(healths: Sequence[Health]) -> list[Health]:
    """The boards in rotation, good before suspect, then fewest recent failures first; ties
    keep their order (the inventory's)."""
    rank = {GOOD: 0, SUSPECT: 1}
    return sorted((h for h in healths if not h.out), key=lambda h: (rank[h.state], h.recent_failures))


def configured(environ: Mapping[str, str] | None = None) -> tuple[int, float]:
    """``health-bad-after`` and ``health-max-out`` from the settings table (rig.settings)."""
    after, most = option("health-bad-after"), option("health-max-out")
    bad_after = parse_count(after.read(environ) or "3", after.env, after.name, 1)
    text = most.read(environ) or "0.5"
    try:
        share = float(text)
    except ValueError:
        share = math.nan
    if not 0 <= share <= 1:
        raise ConfigError(most.env, most.name, f"expected a share from 0 to 1, got {text!r}")
    return bad_after, share


def rotation(
    store: Store, boards: Sequence[str], environ: Mapping[str, str] | None = None
) -> dict[str, Health]:
    """The boards of ``boards`` to skip now, each with its health; raises ``ValveTripped``."""
    bad_after, share = configured(environ)
    return {h.board: h for h in out_of_rotation(lab_health(store, boards, bad_after), share)}
