"""``rig lab health``: each board's health state (good, suspect, bad, maintenance, retired),
why and since when; ``rig lab health BOARD --set STATE --why "..."`` sets one by hand
(rig.history.health, docs/lab.md)."""

from __future__ import annotations

import argparse

from rig.cli import common
from rig.cli.history import store_url
from rig.errors import ConfigError
from rig.history import require

HAND_SET = ("good", "maintenance", "retired")  # rig.history.health.HAND_SET, without SQLAlchemy


def setup(action: argparse.ArgumentParser) -> None:
    action.add_argument("board", nargs="?", metavar="BOARD", help="one board (default: every board)")
    action.add_argument(
        "--set",
        dest="set_state",
        choices=HAND_SET,
        help="set BOARD's state by hand: maintenance and retired take it out until set good again",
    )
    action.add_argument("--why", default="", help="the reason (needed for maintenance and retired)")
    common.table_argument(action, "history", metavar="URL", help="the results store")


def run(args: argparse.Namespace) -> int:
    require()
    # Imported here: the store's libraries are an extra, and the rest of ``rig`` works without.
    from rig.history.health import configured, lab_health, set_state
    from rig.history.store import open_store

    inventory = common.load(args)
    names = [spec.name for spec in inventory.boards]
    board: str | None = args.board
    if board is not None and board not in names:
        raise ConfigError(
            str(inventory.path), "boards", f"no board named {board!r} (boards: {', '.join(names)})"
        )
    if args.set_state is not None and board is None:
        raise ConfigError("rig lab health", "BOARD", "--set needs the board to set")
    bad_after, _ = configured()
    with open_store(store_url(args)) as store:
        if args.set_state is not None:
            assert board is not None
            health = set_state(store, board, args.set_state, args.why)
            print(f"{board}: set {health.describe()}")
            return common.EXIT_OK
        for health in lab_health(store, [board] if board else names, bad_after):
            print(f"{health.board}: {health.describe()}")
    return common.EXIT_OK
