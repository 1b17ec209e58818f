"""``rig page ARTIFACTS``: the bench page over a finished run, replaying a test's timeline with
the same panes ``rig up`` shows live (console, MQTT messages, status, the echo loop), so that a
lab engineer uses one view, live or after the fact. It serves until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

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
    parser.add_argument("--page-host", default="127.0.0.1", metavar="ADDR", help="default: %(default)s")
    parser.add_argument(
        "--page-port", type=int, default=8421, metavar="PORT", help="0: any free port (default: 8421)"
    )


def run(args: argparse.Namespace) -> int:
    # aiohttp loads only for the commands that serve the page.
    from rig.bench_page.hub import EventHub
    from rig.bench_page.replay import ReplayActions, ReplaySource
    from rig.bench_page.server import BenchServer
    from rig.errors import ConfigError
    from rig.evidence.run_folder import NotARunFolder

    try:
        source = ReplaySource(args.artifacts)
    except NotARunFolder as e:  # the folder given is not a run's: a usage error (exit 2)
        raise ConfigError("command line", "ARTIFACTS", str(e)) from e
    for problem in source.problems:  # a broken run.json: its tests replay without outcomes
        print(f"rig: warning: {problem}", file=sys.stderr)
    hub = EventHub()
    server = BenchServer(
        hub, ReplayActions(), source.info(), host=args.page_host, port=args.page_port, replay=source
    )
    server.start()
    try:
        print(f"replaying {len(source.tests())} test(s) of {args.artifacts}")
        print(f"page: {server.url}", flush=True)
        print("rig: serving; Ctrl-C stops it", file=sys.stderr, flush=True)
        while True:
            time.sleep(_POLL_S)
    except KeyboardInterrupt:
        return common.EXIT_OK
    finally:
        server.stop()
        hub.close()
