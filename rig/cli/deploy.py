"""``rig deploy BOARD``: put the firmware and its config.json on a board and leave it running."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

from rig import netaddr, settings
from rig.board.kinds import kind_of
from rig.broker import ExternalBroker
from rig.broker.access import HOST, board_role
from rig.broker.credentials_file import read_credentials
from rig.broker.external import login_from_env
from rig.cli import common
from rig.deploy.step import deploy_firmware
from rig.settings import RigSettings
from rig.testbed import Naming, Testbed, settings_from

HELP = "deploy the firmware and its config to a board and leave it running"

DEFAULT_BROKER_HOST = "127.0.0.1"
DEFAULT_BROKER_PORT = 1883
BROKER_URL = settings.option("broker-url")


def tcp_port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a TCP port number, got {text!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a TCP port is 1..65535, got {value}")
    return value


def positive_seconds(text: str) -> float:
    value = common.seconds(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def setup(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Writes the firmware tree, its dependencies and a config.json to the board (only files "
        "that changed), then soft-resets it so that main.py runs. The deploy itself does not need "
        "the broker, and the firmware never gives up on it: it tries to connect every 2 s until a "
        "broker answers, and after a refused login or a failed TLS handshake it waits longer each "
        "time (backoff_initial, doubling up to backoff_max), so a broker may be started before or "
        "after (rig broker). Nothing named: the one USB board of the inventory plugged in, else "
        "the virtual board (as rig up). A virtual board stops when rig exits; its flash stays (in a "
        "private folder kept for WORKDIR) and the firmware boots again at the next command on it."
    )
    common.add_board_argument(parser)
    parser.add_argument(
        "--broker-host",
        metavar="HOST",
        help=f"the broker as the board sees it (default: the host of ${BROKER_URL.env}, else 127.0.0.1 "
        "for a virtual board and, for a USB board, the inventory's broker_host; 'auto' there means "
        "this machine's address on --broker-interface, else on the default route)",
    )
    parser.add_argument(
        "--broker-port",
        type=tcp_port,
        metavar="PORT",
        help=f"the broker's MQTT port (default: the port of ${BROKER_URL.env}, else {DEFAULT_BROKER_PORT})",
    )
    common.table_argument(
        parser,
        "broker-interface",
        metavar="IFACE",
        help="for broker_host: auto, the network interface whose address the board is given",
    )
    parser.add_argument(
        "--broker-credentials",
        type=Path,
        metavar="FILE",
        help="the file rig broker printed: the broker's address and this board's own account "
        "(without it: $RIG_BROKER_USER and $RIG_BROKER_PASSWORD, else no login)",
    )
    parser.add_argument("--client-id", metavar="ID", help="MQTT client id (default: rig-BOARD)")
    parser.add_argument("--topic-prefix", metavar="PREFIX", help="topic namespace (default: rig/BOARD)")
    parser.add_argument(
        "--loop-period",
        type=positive_seconds,
        default=settings.REFERENCE_LOOP_PERIOD,
        metavar="S",
        help="the firmware's loop period (default: the tutorial's %(default)gs)",
    )
    common.add_firmware_options(parser)


def run(args: argparse.Namespace) -> int:
    firmware: Path = args.firmware
    if args.broker_interface:
        netaddr.use_interface(
            args.broker_interface, common.source_of("broker-interface", args.broker_interface)
        )
    default = default_broker()
    broker = ExternalBroker(
        args.broker_host or default.host, args.broker_port or default.port, login=default.login(HOST)
    )
    spec = common.resolve_board(common.load(args), common.board_name(args))
    if args.broker_credentials is not None:
        # rig broker's own accounts: this board's, and the address it printed.
        given = read_credentials(args.broker_credentials, board_role(spec.name))
        broker = ExternalBroker(
            args.broker_host or given.host, args.broker_port or given.port, login=given.login
        )
    if args.broker_host:
        # Stated on the command line: it beats the inventory's broker_host (and its "auto").
        spec = dataclasses.replace(
            spec, network=dataclasses.replace(spec.network, broker_host=args.broker_host)
        )
    # The board and its config wired as for rig up and a test run (rig.testbed), with the broker
    # given here: it is neither started nor stopped.
    testbed = Testbed(
        _settings(args),
        args.workdir,
        board=spec,
        purpose="rig deploy",
        naming=Naming(),
        own_network=False,
        broker=broker,
    )
    with testbed:
        board = testbed.board()
        config = testbed.config()
        if args.client_id or args.topic_prefix:
            config = dataclasses.replace(
                config,
                client_id=args.client_id or config.client_id,
                topic_prefix=args.topic_prefix or config.topic_prefix,
            )
        if not ExternalBroker(config.broker_host, config.broker_port).is_running():
            # Not an error: the broker may be started later, or be reachable from the board only.
            print(
                f"rig: warning: nothing accepts connections on {config.broker_host}:{config.broker_port} "
                "from here; the firmware cannot connect until a broker runs there (see rig broker)",
                file=sys.stderr,
            )
        for choice in netaddr.choices():  # broker_host: auto, and how the address was found
            print(f"broker address for {spec.name}: {choice.describe()}")
        # Only non-secret fields: the Wi-Fi and broker passwords stay in config.json.
        print(
            f"deploying {firmware} to {spec.name}: broker {config.broker_host}:{config.broker_port}, "
            f"client id {config.client_id}, topic prefix {config.topic_prefix}, "
            f"loop period {config.loop_period:g}s",
            flush=True,
        )

        def progress(path: str, done: int, total: int) -> None:
            print(f"[{done}/{total}] {path}", flush=True)

        s = testbed.settings
        report = deploy_firmware(
            board,
            s.firmware,
            config,
            cache_dir=s.deps_cache,
            offline=s.offline,
            index_dir=s.deps_index,
            progress=progress,
        )
        print(report.summary())
        note = kind_of(spec).note_after_deploy(spec)
        if note is not None:
            print(note)
    return common.EXIT_OK


def _settings(args: argparse.Namespace) -> RigSettings:
    """This command's settings, read through the settings table as the pytest plugin's are."""
    return settings_from(
        {
            "board": args.board,
            "lock-timeout": args.lock_timeout,
            "firmware": args.firmware,
            "loop-period": args.loop_period,
            "micropython": args.micropython,
            "deps-cache": args.deps_cache,
            "deps-index": args.deps_index,
            "offline": args.offline,
        },
        Path.cwd(),
    )


def default_broker() -> ExternalBroker:
    """$RIG_BROKER_URL as the pytest plugin reads it, else the usual local broker. The board's
    view of the host is decided later by ``board_config`` (loopback only suits a virtual board)."""
    url = BROKER_URL.from_environment()
    if url is not None:
        return ExternalBroker.from_spec(url, f"${BROKER_URL.env}", login_from_env(os.environ))
    return ExternalBroker(DEFAULT_BROKER_HOST, DEFAULT_BROKER_PORT, login=login_from_env(os.environ))
