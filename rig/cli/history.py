"""``rig history``: what the results store knows of a test or a board, and ``rig history
import`` of run folders made before the store existed (docs/history.md)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from rig.cli import common
from rig.errors import ConfigError
from rig.history import require
from rig.history.folder import read_folder, run_folders

if TYPE_CHECKING:
    from rig.history.store import Outcome, Store

HELP = "the last outcomes of a test or a board from the results store; import old run folders"
IMPORT = "import"


def setup(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "rig history TEST: the newest outcomes of the tests whose node id contains TEST, on "
        "every board (--board NAME: on that board only). rig history --board NAME: that "
        "board's newest results. rig history import ARTIFACTS...: load run folders (run.json) "
        "or gate output folders made before the store existed; a run already stored is skipped. "
        "The store is --history URL, else an SQLite file next to the inventory."
    )
    common.table_argument(parser, "history", metavar="URL", help="the results store")
    parser.add_argument("--board", metavar="NAME", help="only this board's results")
    parser.add_argument("--last", type=int, default=10, metavar="N", help="how many results (default: 10)")
    parser.add_argument(
        "words",
        nargs="*",
        metavar="TEST | import ARTIFACTS...",
        help="a test's node id (or part of it), or 'import' and the folders to load",
    )


def store_url(args: argparse.Namespace) -> str:
    from rig.history.store import default_url

    given: str | None = args.history
    return given if given else default_url(common.inventory_path(args))


def run(args: argparse.Namespace) -> int:
    require()
    # Imported here: the store's libraries are an extra, and the rest of ``rig`` works without.
    from rig.history.store import open_store

    words: list[str] = args.words
    if args.last < 1:
        raise ConfigError("--last", "last", f"{args.last}: must be at least 1")
    if words[:1] == [IMPORT]:
        if len(words) < 2:
            raise ConfigError("rig history import", "ARTIFACTS", "name at least one run folder")
        folders = run_folders([Path(w) for w in words[1:]])  # every folder checked before writing
        with open_store(store_url(args)) as store:
            return import_folders(store, folders)
    if len(words) > 1:
        raise ConfigError("rig history", "TEST", f"one test at a time, got {len(words)}: {' '.join(words)}")
    if not words and args.board is None:
        raise ConfigError("rig history", "TEST", "name a test, or a board with --board NAME")
    with open_store(store_url(args)) as store:
        rows = store.outcomes(nodeid=words[0] if words else None, board=args.board, last=args.last)
        if not rows:
            print(f"no results in {store.url} for {describe(words, args.board)}")
            return common.EXIT_OK
        for row in rows:
            print(outcome_line(row))
    return common.EXIT_OK


def import_folders(store: Store, folders: list[Path]) -> int:
    added = 0
    for folder in folders:
        # The commit and host of an old folder are unknown: run.json never held them, and the
        # checkout it ran from may have moved on since.
        run = read_folder(folder)
        if store.write(run):
            added += 1
            print(f"imported {folder}: {len(run.results)} results")
        else:
            print(f"already stored: {folder}")
    print(f"{added} run(s) imported into {store.url}, {len(folders) - added} already there")
    return common.EXIT_OK


def describe(words: list[str], board: str | None) -> str:
    parts = [f"test {words[0]!r}"] if words else []
    if board is not None:
        parts.append(f"board {board!r}")
    return " on ".join(parts)


def outcome_line(row: Outcome) -> str:
    """``2026-12-06 05:40Z  virtual  FAILED (firmware)  0.41s  tests/hil/test_x.py::test_y  why``"""
    verdict = row.outcome.upper() + (f" ({row.failure})" if row.failure != "none" else "")
    line = (
        f"{row.started:%Y-%m-%d %H:%MZ}  {row.run_kind:6}  {row.board:12}  {verdict:26}  "
        f"{row.duration:7.2f}s  {row.nodeid}"
    )
    message = row.message.splitlines()[0] if row.message else ""
    return f"{line}  {message}" if message and row.outcome != "passed" else line
