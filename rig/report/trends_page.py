"""The trends page (``rig trends``): one offline HTML file of the last N runs of the results
store, drawn from ``rig.history.trends``'s data: an outcome grid (board x test x run, each cell a
colour and a word), one inline SVG plot per figure, and what changed in the newest run.

The plots are drawn without a plotting library, as the report's echo plot is, so the page needs
no network; this module computes the geometry, ``templates/trends.html.j2`` draws it, autoescaped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from rig.atomic import write_atomically
from rig.history.trends import MIN_HISTORY, NOISE_FLOOR, NOISE_K, Cell, Series, Trends, subject
from rig.report.echo_plot import nice_ticks
from rig.report.templating import static, template

TITLE = "MicroPython MQTT rig: night to night"
LABELS = {
    "passed": "PASS",
    "failed": "FAIL",
    "error": "ERROR",
    "infra": "INFRA",
    "skipped": "SKIP",
    "flaky": "FLAKY",
    "quarantined": "QUARANTINED",
    "missing": "—",
}
PLOT_W = 460
PLOT_H = 150
PAD_L = 60
PAD_R = 12
PAD_T = 12
PAD_B = 24


@dataclass(frozen=True)
class GridCell:
    kind: str  # the CSS class suffix: passed, failed, error, infra, skipped, flaky, missing
    label: str
    tip: str


@dataclass(frozen=True)
class Plot:
    title: str
    unit: str
    points: tuple[tuple[float, float, str], ...]  # x, y, the value as shown
    line: str  # the polyline's points
    ticks: tuple[tuple[float, str], ...]  # y, label
    width: int = PLOT_W
    height: int = PLOT_H


def grid_cell(cell: Cell | None) -> GridCell:
    if cell is None:
        return GridCell("missing", LABELS["missing"], "did not run")
    kind = (
        "infra" if cell.outcome in ("failed", "error") and cell.failure == "infrastructure" else cell.outcome
    )
    kind = kind if kind in LABELS else "error"
    tip = f"{cell.outcome} ({cell.failure}): {cell.message}" if cell.message else cell.outcome
    return GridCell(kind, LABELS[kind], tip)


def plot(series: Series, runs: int) -> Plot | None:
    """The geometry of one figure across ``runs`` runs; None when no run recorded it."""
    known = [(i, v) for i, v in enumerate(series.values) if v is not None]
    if not known:
        return None
    lo = min(v for _, v in known)
    hi = max(v for _, v in known)
    if hi == lo:
        lo, hi = lo - (abs(lo) * 0.1 or 1.0), hi + (abs(hi) * 0.1 or 1.0)
    ticks = nice_ticks(lo, hi, 4)
    lo, hi = min([lo, *ticks]), max([hi, *ticks])
    inner_w = PLOT_W - PAD_L - PAD_R
    inner_h = PLOT_H - PAD_T - PAD_B

    def x(i: int) -> float:
        return PAD_L + (inner_w * i / (runs - 1) if runs > 1 else inner_w / 2)

    def y(v: float) -> float:
        return PAD_T + inner_h * (hi - v) / (hi - lo)

    points = tuple((x(i), y(v), f"{v:g}") for i, v in known)
    return Plot(
        title=subject(series.board, series.name),
        unit=series.unit,
        points=points,
        line=" ".join(f"{px:.1f},{py:.1f}" for px, py, _ in points),
        ticks=tuple((y(t), f"{t:g}") for t in ticks),
    )


def render_trends(data: Trends, generated: float, title: str = TITLE) -> str:
    runs = len(data.runs)
    plots = [p for p in (plot(s, runs) for s in data.series) if p is not None]
    return template("trends.html.j2").render(
        title=title,
        generated=time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(generated)),
        runs=data.runs,
        rows=[(row.board, row.nodeid, [grid_cell(c) for c in row.cells]) for row in data.rows],
        plots=plots,
        changes=data.changes,
        health=data.health,
        rule=(
            f"A figure moved past its noise when its newest value lies further from the median of "
            f"the previous runs' values than {NOISE_K:g} times their median absolute deviation (MAD; "
            f"at least {NOISE_FLOOR:.0%} of the median), judged once {MIN_HISTORY} previous runs "
            f"recorded it. A test is flaky in a run where it both failed and passed (a retry)."
        ),
        labels=LABELS,
        css=static("report.css"),
    )


def write_trends(data: Trends, out: Path) -> Path:
    """Write the page to ``out`` atomically (a reader never opens half a page); ``out``."""
    write_atomically(out, render_trends(data, time.time()))
    return out
