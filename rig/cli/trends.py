"""``rig trends``: the night-to-night page of the results store (docs/history.md); and the same
page written by ``rig gate`` beside its report once it stored its run (``store_gate_run``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from rig.cli import common
from rig.cli.history import store_url
from rig.errors import ConfigError
from rig.history import require
from rig.history.writer import record_folder

if TYPE_CHECKING:
    from rig.history.store import Store
    from rig.history.trends import Trends

HELP = "an offline HTML page of the last N runs in the results store: outcomes, figures, what changed"
DEFAULT_OUT = "trends.html"
NIGHTS = 14


def setup(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "rig trends: write one offline HTML page (no network needed) of the newest N runs in "
        "the results store: each board's and test's outcome per run, the figures as plots across "
        "runs, and what changed in the newest run (new failures, fixed, newly flaky, figures "
        "beyond their noise). The store is --history URL, else an SQLite file next to the "
        "inventory."
    )
    common.table_argument(parser, "history", metavar="URL", help="the results store")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(DEFAULT_OUT),
        metavar="FILE",
        help=f"the page (default: {DEFAULT_OUT})",
    )
    parser.add_argument(
        "--nights", type=int, default=NIGHTS, metavar="N", help=f"how many runs (default: {NIGHTS})"
    )


def run(args: argparse.Namespace) -> int:
    require()
    # Imported here: the store's libraries are an extra, and the rest of ``rig`` works without.
    from rig.history.store import open_store

    if args.nights < 1:
        raise ConfigError("--nights", "nights", f"{args.nights}: must be at least 1")
    with open_store(store_url(args)) as store:
        data = write_page(store, args.out, args.nights)
    print(summary(data, args.out))
    return common.EXIT_OK


def write_page(store: Store, out: Path, nights: int) -> Trends:
    """Write the page of ``store``'s newest ``nights`` runs to ``out``; its data."""
    from rig.history.trends import trends
    from rig.report.trends_page import write_trends

    data = trends(store, nights)
    write_trends(data, out)
    return data


def summary(data: Trends, out: Path) -> str:
    return f"trends: {len(data.runs)} run(s), {len(data.changes)} change(s): {out}"


def store_gate_run(store: Store | None, out: Path, firmware: Path) -> tuple[list[str], Path | None]:
    """What ``rig gate`` does once its ``junit.xml`` is written, before its report: store the
    run of ``out`` and write ``out/trends.html`` (which the report then links). The lines to
    print, and the page (None when none was written). Never raises for the store or the page:
    the gate's verdict stands, and a lost history is said in a warning line."""
    try:
        stored = record_folder(store, out, firmware)
    except ConfigError as e:
        return [f"rig: warning: results not stored: {e}"], None
    if store is None:
        return [stored], None
    from rig.report.page import TRENDS_PAGE

    page = out / TRENDS_PAGE
    try:
        data = write_page(store, page, NIGHTS)
    except Exception as e:  # a bug in the page must not take the gate's verdicts with it
        return [stored, f"rig: warning: {TRENDS_PAGE} not written: {type(e).__name__}: {e}"], None
    return [stored, summary(data, page)], page
