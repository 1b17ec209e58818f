"""``rig trends``: the night-to-night page of the results store (docs/history.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rig.cli import common
from rig.cli.history import store_url
from rig.errors import ConfigError
from rig.history import require

HELP = "an offline HTML page of the last N runs in the results store: outcomes, figures, what changed"
DEFAULT_OUT = "trends.html"


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
    parser.add_argument("--nights", type=int, default=14, metavar="N", help="how many runs (default: 14)")


def run(args: argparse.Namespace) -> int:
    require()
    # Imported here: the store's libraries are an extra, and the rest of ``rig`` works without.
    from rig.history.store import open_store
    from rig.history.trends import trends
    from rig.report.trends_page import write_trends

    if args.nights < 1:
        raise ConfigError("--nights", "nights", f"{args.nights}: must be at least 1")
    with open_store(store_url(args)) as store:
        data = trends(store, args.nights)
    out = write_trends(data, args.out)
    print(f"trends: {len(data.runs)} run(s), {len(data.changes)} change(s): {out}")
    return common.EXIT_OK
