"""``rig up [BOARD]``: the tutorial in one command, and the bench page that shows it live.

It starts the embedded broker (locked down: an account for the board, the host, the page),
deploys the firmware with a config.json pointing at that broker (only what changed), starts the
board and waits for its hello (all of it wired by ``rig.testbed``, as for a test run), then prints
which broker runs (mosquitto or amqtt, and its version), its addresses, the board's topics, where
the accounts are, a subscribe command ready to paste, and the page's URL, and shows the console
until Ctrl-C (or SIGTERM). Then the firmware is stopped with Ctrl-C over serial, as the suite does,
so that it disconnects cleanly (the broker keeps its session and publishes no will), and the page,
the board and the broker are stopped and released: no process is left.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import queue
import secrets
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from rig.bench_page.hub import EventHub
from rig.bench_page.live import LiveBench
from rig.board import Board
from rig.broker import Broker
from rig.broker.access import HOST
from rig.broker.credentials_file import subscribe_command
from rig.broker.factory import KINDS as BROKER_KINDS
from rig.cli import common
from rig.cli.page import add_page_options, check_page_options
from rig.deadline import Deadline
from rig.errors import BrokerError
from rig.evidence.run_audit import ArtifactsAudit
from rig.firmware_config import FirmwareConfig
from rig.serial_events import parse_event
from rig.serialio.lines import Line
from rig.settings import REFERENCE_LOOP_PERIOD, RigSettings, parse_seconds
from rig.testbed import Naming, Testbed, broker_identity, settings_from

HELP = "the tutorial in one command: broker, firmware, board, live console and the bench page"

# The brokers rig up can run itself: the settings table's, but an external one.
KINDS = tuple(kind for kind in BROKER_KINDS if kind != "external")
# How long the firmware gets to say goodbye after Ctrl-C before the board is closed anyway.
GOODBYE_S = 5.0
_POLL_S = 0.5


def setup(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Starts the embedded broker, deploys the firmware with its config pointing at it (only "
        "what changed), runs the board, and serves the bench page: the console, the MQTT "
        "messages, the board's status and the echo loop, live, with an inject box and the "
        "bench's buttons. Ctrl-C stops the firmware cleanly, then everything else."
    )
    common.add_board_argument(parser)
    common.table_argument(
        parser,
        "broker",
        "--kind",
        choices=(*KINDS, "external"),
        help="the broker it runs; external is taken for auto, as rig up runs its own (--kind: its old name)",
    )
    parser.add_argument("--tls", action="store_true", help="the board connects over TLS (a CA made now)")
    parser.add_argument(
        "--loop-period",
        type=float,
        default=REFERENCE_LOOP_PERIOD,
        metavar="S",
        help="the firmware's loop period (default: the tutorial's %(default)gs, as rig deploy)",
    )
    add_page_options(parser, port=8420)
    parser.add_argument(
        "--quiet", action="store_true", help="do not show the console here (the page still does)"
    )
    parser.add_argument(
        "--show-events",
        action="store_true",
        help="show the firmware's @rig event lines in the console too (default: hidden; the "
        "page can show them, the artifacts keep them)",
    )
    common.table_argument(parser, "timeout", convert=parse_seconds, metavar="S", help="bound of each wait")
    common.add_firmware_options(parser)


def run(args: argparse.Namespace) -> int:
    # aiohttp loads only for the commands that serve the page.
    from rig.bench_page.server import BenchServer

    check_page_options(args)
    # rig up runs the embedded broker (--broker), whatever $RIG_BROKER_URL says for the test suite.
    settings = dataclasses.replace(
        _settings(args), broker=common.embedded_broker(args.broker), broker_url=None
    )
    spec = common.resolve_board(common.load(args), common.board_name(args))
    with contextlib.ExitStack() as stack:
        testbed = Testbed(
            settings, args.workdir, board=spec, purpose="rig up", naming=Naming(), own_network=False
        )
        # Entered first, so it leaves last: the artifacts are audited once everything stopped.
        audit = stack.enter_context(ArtifactsAudit(args.workdir, testbed.secrets))
        stack.enter_context(testbed)
        name = spec.name
        # The board first: one that is absent or busy stops the command before a broker starts.
        board = testbed.board()
        broker = testbed.broker()
        config = testbed.config()
        console = None if args.quiet else stack.enter_context(_console(board, args.show_events))
        print(f"rig: deploying {settings.firmware} to {name} and starting it", file=sys.stderr, flush=True)
        testbed.run_firmware(config)
        credentials = testbed.write_credentials()

        hub = EventHub()
        stack.callback(hub.close)
        live = LiveBench(
            spec, board, broker, config, hub, client_tag=secrets.token_hex(3), timeout=args.timeout
        )
        live.start()
        stack.callback(live.stop)
        server = BenchServer(
            hub,
            live,
            _info(name, config, broker, live),
            host=args.page_host,
            port=args.page_port,
            max_streams=args.page_streams,
        )
        server.start(timeout=args.timeout)
        stack.callback(server.stop)
        try:
            # Inside the try: a Ctrl-C or SIGTERM landing right after the announcement is the
            # command's normal end too (the firmware's goodbye, then the audit), not exit 130.
            # The token's only way out: this terminal (never a file, never a log).
            _announce(name, config, broker, credentials, server.page_url)
            if console is not None:
                console.show_from_now()
            while broker.is_running():
                time.sleep(_POLL_S)
            raise BrokerError(f"{broker.kind} broker exited on its own; see its log: {broker.log_path}")
        except KeyboardInterrupt:
            print(
                "\nrig: stopping: Ctrl-C to the firmware, then the page, the board and the broker",
                file=sys.stderr,
            )
            _goodbye(board, args.timeout)
    print(audit.message(), flush=True)
    return common.EXIT_OK if audit.clean else common.EXIT_FAILED


def _info(name: str, config: FirmwareConfig, broker: Broker, live: LiveBench) -> dict[str, object]:
    return {
        "mode": "live",
        "board": name,
        "echo_topic": config.echo_topic,
        "status_topic": config.status_topic if config.has_status else None,
        "topic_prefix": config.topic_prefix,
        "mqtt": f"mqtt://{broker.host}:{broker.port}",
        "websocket": f"ws://{broker.host}:{broker.ws_port}/mqtt" if broker.ws_port is not None else None,
        "loop_period": config.loop_period,
        "unavailable": live.unavailable(),
    }


def _settings(args: argparse.Namespace) -> RigSettings:
    """This command's settings, read through the settings table as the pytest plugin's are."""
    return settings_from(
        {
            "board": args.board,
            "lock-timeout": args.lock_timeout,
            "broker": common.embedded_broker(args.broker),
            "tls": args.tls,
            "firmware": args.firmware,
            "loop-period": args.loop_period,
            "micropython": args.micropython,
            "deps-cache": args.deps_cache,
            "deps-index": args.deps_index,
            "offline": args.offline,
            "timeout": args.timeout,
        },
        Path.cwd(),
    )


def _announce(name: str, config: FirmwareConfig, broker: Broker, credentials: Path | None, page: str) -> None:
    """What runs and how to reach it; never a password (the subscribe command reads it from the
    credentials file when it runs)."""
    print(f"broker: {broker_identity(broker)}")
    print(f"mqtt: mqtt://{broker.host}:{broker.port}")
    if broker.ws_port is not None:
        print(f"websocket: ws://{broker.host}:{broker.ws_port}/mqtt")
    if broker.tls_port is not None:
        print(f"tls: mqtts://{broker.host}:{broker.tls_port}")
    status = config.status_topic if config.has_status else "none (the firmware declares none)"
    print(f"board: {name}: echo topic {config.echo_topic}, status topic {status}")
    # The board's own filters, which the host's account may read (the ACL refuses it the rest).
    watch = config.watch_filters()
    if credentials is not None:
        print(f"credentials: {credentials} (readable by you only)")
        print(f"subscribe: {subscribe_command(credentials, HOST, watch)}")
    else:
        print(f"subscribe: {subscribe_command(None, HOST, watch, address=(broker.host, broker.port))}")
    print(f"page: {page}", flush=True)
    print("rig: running; Ctrl-C stops the firmware cleanly, then everything", file=sys.stderr, flush=True)


def _goodbye(board: Board, timeout: float) -> None:
    """Ctrl-C over serial, as the suite stops the firmware: its ``finally`` disconnects cleanly.
    Wait (bounded) for its "disconnected" event or a prompt before the board is closed."""
    start = board.capture.next_index
    board.interrupt()
    deadline = Deadline(min(timeout, GOODBYE_S))
    said = board.capture.wait(
        lambda ln: (
            ((ev := parse_event(ln.text)) is not None and ev.get("ev") == "disconnected")
            or ln.text.startswith(">>>")
        ),
        start,
        deadline,
        include_partial=True,
    )
    if said is None:
        print(f"rig: warning: the firmware said no goodbye within {deadline.timeout:g}s", file=sys.stderr)


class _Console:
    """The board's console on stdout, one line at a time, from the moment it is asked to.

    The capture calls ``on_line`` on the port's reader thread: it only queues, and a thread of
    its own writes, so that a terminal or a pipe nobody reads can never hold up the capture (and
    with it the board). A queue left full loses lines, and says how many.
    """

    BACKLOG = 10000

    def __init__(self, board: Board, show_events: bool = False) -> None:
        self.board = board
        # The firmware's @rig lines are for the rig: two per message, they drown the tutorial's own.
        self.show_events = show_events
        self.showing = False
        self.dropped = 0
        self._lines: queue.Queue[Line | None] = queue.Queue(self.BACKLOG)
        self._writer = threading.Thread(target=self._write, name="rig-up-console", daemon=True)
        self._writer.start()

    def on_line(self, line: Line) -> None:
        if self.showing and (self.show_events or parse_event(line.text) is None):
            try:
                self._lines.put_nowait(line)
            except queue.Full:
                self.dropped += 1

    def show_from_now(self) -> None:
        if not self.show_events:
            print("rig: the firmware's @rig lines are hidden here; --show-events shows them", file=sys.stderr)
        self.showing = True

    def _write(self) -> None:
        while (line := self._lines.get()) is not None:
            if self.dropped:
                sys.stdout.write(f"rig: {self.dropped} console lines not shown (stdout was not read)\n")
                self.dropped = 0
            sys.stdout.write(f"{time.strftime('%H:%M:%S', time.localtime(line.t))} {line.text}\n")
            sys.stdout.flush()

    def close(self) -> None:
        self.showing = False
        with contextlib.suppress(queue.Full):
            self._lines.put_nowait(None)
        self._writer.join(1.0)  # a stdout that blocks is left to the daemon thread


@contextlib.contextmanager
def _console(board: Board, show_events: bool) -> Iterator[_Console]:
    console = _Console(board, show_events)
    board.capture.add_listener(console.on_line)
    try:
        yield console
    finally:
        board.capture.remove_listener(console.on_line)
        console.close()
