"""``rig page ARTIFACTS``: the bench page over a finished run, replaying a test's timeline with
the same panes ``rig up`` shows live (console, MQTT messages, status, the echo loop), so that a
lab engineer uses one view, live or after the fact. It serves until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rig.bench_page.server import MAX_STREAMS
from rig.cli import common

HELP = "replay a finished run's artifacts in the bench page (the view rig up shows live)"

_POLL_S = 0.5


def setup(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Serves the bench page over a finished run's artifacts folder (pytest --rig-artifacts, or "
        "one board's folder of rig gate): pick a test and replay its timeline, with the panes of "
        "rig up. Runs until Ctrl-C."
    )
    parser.add_argument("artifacts", type=Path, metavar="ARTIFACTS", help="the run's artifacts folder")
    add_page_options(parser, port=8421)


def add_page_options(parser: argparse.ArgumentParser, port: int) -> None:
    """Where the bench page listens and how many pages it serves: rig page's and rig up's."""
    parser.add_argument(
        "--page-host",
        default="127.0.0.1",
        metavar="ADDR",
        help="where the page listens; loopback only unless --page-expose (default: %(default)s)",
    )
    parser.add_argument(
        "--page-port",
        type=int,
        default=port,
        metavar="PORT",
        help=f"the page's port; 0: any free one (default: {port})",
    )
    parser.add_argument(
        "--page-expose",
        action="store_true",
        help="let --page-host be an address other machines reach (0.0.0.0, a LAN address): anyone "
        "there with the page's token can read the console, inject and cut the power",
    )
    parser.add_argument(
        "--page-streams",
        type=int,
        default=MAX_STREAMS,
        metavar="N",
        help="event streams (tabs, scripts) open at once; more are refused (default: %(default)s)",
    )


def check_page_options(args: argparse.Namespace) -> None:
    """Refuses a page host beyond loopback without --page-expose (a usage error naming the
    option), and says what it exposes when given; before anything starts."""
    from rig.bench_page.access import BindRefused, check_bind, exposure_warning
    from rig.errors import ConfigError

    if args.page_streams < 1:
        raise ConfigError("command line", "--page-streams", f"{args.page_streams}: at least 1")
    try:
        check_bind(args.page_host, args.page_expose)
    except BindRefused as e:
        raise ConfigError("command line", "--page-host", str(e)) from e
    if args.page_expose:
        warning = exposure_warning(args.page_host, args.page_port)
        print(f"rig: warning: {warning}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    # aiohttp loads only for the commands that serve the page.
    from rig.bench_page.hub import EventHub
    from rig.bench_page.replay import ReplayActions, ReplaySource
    from rig.bench_page.server import BenchServer
    from rig.errors import ConfigError
    from rig.evidence.run_folder import NotARunFolder

    check_page_options(args)
    try:
        source = ReplaySource(args.artifacts)
    except NotARunFolder as e:  # the folder given is not a run's: a usage error (exit 2)
        raise ConfigError("command line", "ARTIFACTS", str(e)) from e
    for problem in source.problems:  # a broken run.json: its tests replay without outcomes
        print(f"rig: warning: {problem}", file=sys.stderr)
    hub = EventHub()
    server = BenchServer(
        hub,
        ReplayActions(),
        source.info(),
        host=args.page_host,
        port=args.page_port,
        replay=source,
        max_streams=args.page_streams,
    )
    server.start()
    try:
        print(f"replaying {len(source.tests())} test(s) of {args.artifacts}")
        # The token's only way out: this terminal (never a file, never a log).
        print(f"page: {server.page_url}", flush=True)
        print("rig: serving; Ctrl-C stops it", file=sys.stderr, flush=True)
        while True:
            time.sleep(_POLL_S)
    except KeyboardInterrupt:
        return common.EXIT_OK
    finally:
        server.stop()
        hub.close()
