"""Night to night: what the store says of the last N runs, for ``rig trends`` (docs/history.md).

``trends(store, nights)`` reads the newest ``nights`` runs and returns plain data: each board's
and test's outcome per run, the figures per run (and the suite's duration), and what changed
in the newest run against the one before it. ``rig.report.trends_page`` draws it.

Quarantined: a failure the quarantine file shielded (``rig.history.folder.QUARANTINED``): it
neither counts as a new failure nor as fixed, and keeps its message.

Board health: the state of every board in the rows (``rig.history.health``), so that the page
says which board is out of rotation, why and since when.

Flaky: a test that failed and passed within one run (the gate's retry is stored beside the
first attempt) is ``flaky`` in that run; so is a result a writer stored with outcome ``flaky``.

A figure "moved past its noise" when its newest value lies beyond the median of the previous
runs' values by more than ``NOISE_K`` times their median absolute deviation (MAD); the MAD is
floored at ``NOISE_FLOOR`` of the median, so that a figure that never varied does not flag a
change of a rounding step. At least ``MIN_HISTORY`` previous values are needed to judge.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from rig.history.folder import QUARANTINED
from rig.history.health import Health, configured, lab_health
from rig.history.models import Result, Run
from rig.history.store import Store

NOISE_K = 3.0
NOISE_FLOOR = 0.02
MIN_HISTORY = 3
SUITE_DURATION = "suite duration"
BAD = frozenset({"failed", "error"})
FLAKY = "flaky"


@dataclass(frozen=True)
class RunInfo:
    """One run, oldest first in ``Trends.runs``."""

    key: str
    kind: str
    started: datetime
    duration: float | None  # seconds from start to end; None for a run that never ended


@dataclass(frozen=True)
class Cell:
    """A test on a board in one run: its outcome (``passed``, ``failed``, ``error``,
    ``skipped``, ``flaky``), whose failure it was, and the message of a failing attempt."""

    outcome: str  # or ``quarantined``
    failure: str = "none"
    message: str = ""


@dataclass(frozen=True)
class Row:
    board: str
    nodeid: str
    cells: tuple[Cell | None, ...]  # one per run, None where the test did not run


@dataclass(frozen=True)
class Series:
    """One figure across runs: ``values[i]`` is run i's median of it (None: not recorded)."""

    name: str
    unit: str
    board: str  # "" for the suite's duration
    values: tuple[float | None, ...]


@dataclass(frozen=True)
class Change:
    kind: str  # "new failure", "fixed", "newly flaky", "figure moved"
    subject: str  # the test (board: nodeid) or the figure (board: name)
    detail: str


@dataclass(frozen=True)
class Trends:
    runs: tuple[RunInfo, ...]
    rows: tuple[Row, ...]
    series: tuple[Series, ...]
    changes: tuple[Change, ...]
    health: tuple[Health, ...] = ()  # one per board of ``rows``, in their order


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def _cell(results: list[Result]) -> Cell:
    outcomes = {r.outcome for r in results}
    bad = [r for r in results if r.outcome in BAD]
    if FLAKY in outcomes or (bad and "passed" in outcomes):
        first = bad[0] if bad else results[0]
        return Cell(FLAKY, first.failure, first.message)
    if bad:
        return Cell(bad[-1].outcome, bad[-1].failure, bad[-1].message)
    last = results[-1]
    if last.outcome == QUARANTINED:
        return Cell(QUARANTINED, last.failure, last.message)
    return Cell(last.outcome)


def trends(store: Store, nights: int, bad_after: int | None = None) -> Trends:
    """The newest ``nights`` runs of ``store``, oldest first, what changed in the newest, and
    each board's health now (``bad_after``: default, the settings table's)."""
    query = (
        select(Run)
        .options(selectinload(Run.results).selectinload(Result.figures))
        .order_by(Run.started.desc(), Run.id.desc())
        .limit(nights)
    )
    with Session(store.engine) as session:
        rows_of_runs = list(reversed(session.scalars(query).all()))
        runs = tuple(
            RunInfo(
                run.key,
                run.kind,
                _aware(run.started),
                None if run.ended is None else (_aware(run.ended) - _aware(run.started)).total_seconds(),
            )
            for run in rows_of_runs
        )
        by_test: dict[tuple[str, str], dict[int, list[Result]]] = defaultdict(lambda: defaultdict(list))
        figures: dict[tuple[str, str, str], dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
        for index, run in enumerate(rows_of_runs):
            for result in sorted(run.results, key=lambda r: r.id):
                by_test[(result.board, result.nodeid)][index].append(result)
                for figure in result.figures:
                    figures[(result.board, figure.name, figure.unit)][index].append(figure.value)
        rows = tuple(
            Row(board, nodeid, tuple(_cell(per[i]) if i in per else None for i in range(len(runs))))
            for (board, nodeid), per in sorted(by_test.items())
        )
    series = [Series(SUITE_DURATION, "s", "", tuple(run.duration for run in runs))]
    series += [
        Series(
            name,
            unit,
            board,
            tuple(statistics.median(per[i]) if i in per else None for i in range(len(runs))),
        )
        for (board, name, unit), per in sorted(figures.items())
    ]
    boards = list(dict.fromkeys(row.board for row in rows))
    health = lab_health(store, boards, configured()[0] if bad_after is None else bad_after)
    return Trends(runs, rows, tuple(series), tuple(_changes(rows, series)), tuple(health))


def subject(board: str, name: str) -> str:
    return f"{board}: {name}" if board else name


def _changes(rows: tuple[Row, ...], series: list[Series]) -> list[Change]:
    changes: list[Change] = []
    for row in rows:
        if len(row.cells) < 2 or row.cells[-1] is None:
            continue
        now, before = row.cells[-1], row.cells[-2]
        was = before.outcome if before is not None else "absent"
        if now.outcome in BAD and was not in BAD:
            changes.append(
                Change(
                    "new failure", subject(row.board, row.nodeid), f"{was} -> {now.outcome}: {now.message}"
                )
            )
        elif now.outcome == "passed" and was in BAD:
            changes.append(Change("fixed", subject(row.board, row.nodeid), f"{was} -> passed"))
        elif now.outcome == FLAKY and was != FLAKY:
            changes.append(
                Change("newly flaky", subject(row.board, row.nodeid), f"{was} -> flaky: {now.message}")
            )
    for line in series:
        moved = figure_moved(line.values)
        if moved is not None:
            changes.append(
                Change("figure moved", subject(line.board, line.name), f"{moved} {line.unit}".rstrip())
            )
    return changes


def figure_moved(values: tuple[float | None, ...]) -> str | None:
    """How the newest value left the previous ones' noise band (module docstring), or None."""
    if not values or values[-1] is None:
        return None
    previous = [v for v in values[:-1] if v is not None]
    if len(previous) < MIN_HISTORY:
        return None
    newest = values[-1]
    median = statistics.median(previous)
    mad = statistics.median(abs(v - median) for v in previous)
    band = NOISE_K * max(mad, NOISE_FLOOR * abs(median))
    if abs(newest - median) <= band:
        return None
    return f"{newest:g}, previous median {median:g} ± {band:g}"
