"""``rig broker``: the rig's embedded MQTT broker in the foreground, until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import sys
import time

from rig.broker import make_broker
from rig.cli import common
from rig.errors import BrokerError

HELP = "run the embedded MQTT broker in the foreground until Ctrl-C"

KINDS = ("auto", "mosquitto", "amqtt")
_POLL_S = 0.5


def setup(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Starts the broker the test rig uses (mosquitto if installed, else amqtt), prints its "
        "MQTT and WebSocket URLs and its log file, and stops it on Ctrl-C or SIGTERM (exit 0)."
    )
    parser.add_argument(
        "--kind",
        choices=KINDS,
        default="auto",
        help="auto (mosquitto if installed, else amqtt), mosquitto or amqtt (default: %(default)s)",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on; a board on Wi-Fi needs this machine's LAN address or 0.0.0.0 "
        "(default: %(default)s)",
    )


def run(args: argparse.Namespace) -> int:
    broker = make_broker(args.kind, args.workdir / "broker", source="--kind", host=args.host)
    broker.start()
    try:
        print(f"mqtt://{broker.host}:{broker.port}")
        if broker.ws_port is not None:
            print(f"ws://{broker.host}:{broker.ws_port}/mqtt")
        print(f"{broker.kind} log: {broker.log_path}", flush=True)
        print("rig: broker running; Ctrl-C stops it", file=sys.stderr, flush=True)
        while broker.is_running():
            time.sleep(_POLL_S)
        raise BrokerError(f"{broker.kind} broker exited on its own; see its log: {broker.log_path}")
    except KeyboardInterrupt:
        return common.EXIT_OK  # Ctrl-C and SIGTERM are how this command is meant to end
    finally:
        broker.stop()
