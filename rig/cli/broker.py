"""``rig broker``: the rig's embedded MQTT broker in the foreground, until Ctrl-C or SIGTERM.

It is locked down as in a test run, wired by the same ``rig.testbed.Testbed``: an account for
each board of the inventory (topics ``rig/BOARD/#``, what ``rig deploy`` gives a board), one for
the host, one for a web page (the injector), anonymous clients refused. It says which broker
runs (mosquitto or amqtt, and its version). The accounts go into a file readable by this user
only (``rig.broker.credentials_file``), whose path is printed, never the passwords; each board's
account is bound to the board's client id (``rig-BOARD``, printed with it), so one board's login
cannot take over another board's session;
``rig deploy --broker-credentials FILE`` gives a board its own account from it. ``--open`` runs
the broker the old way: anonymous, every topic open.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from rig.board_choice import BUILTIN_VIRTUAL
from rig.broker.access import Account
from rig.broker.factory import KINDS as BROKER_KINDS
from rig.cli import common
from rig.errors import BrokerError
from rig.testbed import Naming, Testbed, broker_identity, settings_from

HELP = "run the embedded MQTT broker in the foreground until Ctrl-C"

# The brokers rig broker can run itself: the settings table's, but an external one.
KINDS = tuple(kind for kind in BROKER_KINDS if kind != "external")
_POLL_S = 0.5


def setup(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Starts the broker the test rig uses (mosquitto if installed, else amqtt), locked down: "
        "an account per board of the inventory, anonymous clients refused. Prints its MQTT and "
        "WebSocket URLs, the file with the accounts (readable by you only) and its log file, "
        "and stops it on Ctrl-C or SIGTERM (exit 0)."
    )
    common.table_argument(
        parser,
        "broker",
        "--kind",
        choices=(*KINDS, "external"),
        help="auto (mosquitto if installed, else amqtt), mosquitto or amqtt; external is taken for "
        "auto, as this command runs its own broker (--kind: its old name)",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on; a board on Wi-Fi needs this machine's LAN address or 0.0.0.0 "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--open",
        action="store_true",
        help="admit anonymous clients to every topic (no accounts, no ACL): only on a closed bench",
    )
    parser.add_argument(
        "--tls",
        action="store_true",
        help="also listen for MQTT over TLS, with a CA and a certificate made now (the CA file is in "
        "the credentials file)",
    )


def run(args: argparse.Namespace) -> int:
    # The embedded broker (--broker), whatever $RIG_BROKER_URL says for the test suite.
    settings = dataclasses.replace(
        settings_from(
            {
                "broker": common.embedded_broker(args.broker),
                "tls": args.tls,
                "lock-timeout": args.lock_timeout,
            },
            Path.cwd(),
        ),
        broker=common.embedded_broker(args.broker),
        broker_url=None,
    )
    # An account for each board of the inventory (the built-in virtual board without one), on
    # the topic prefix rig deploy gives it.
    boards = common.load(args).boards or [BUILTIN_VIRTUAL]
    with Testbed(
        settings,
        args.workdir,
        board=None,
        purpose="rig broker",
        naming=Naming(),
        own_network=False,
        accounts_for=boards,
        broker_host=args.host,
        locked_down=not args.open,
    ) as testbed:
        broker = testbed.broker()
        # From here an interrupt is how this command ends, whenever it comes: while the
        # broker is announced too (a SIGTERM right after the log line exited 130).
        try:
            print(f"broker: {broker_identity(broker)}")
            print(f"mqtt://{broker.host}:{broker.port}")
            if broker.ws_port is not None:
                print(f"ws://{broker.host}:{broker.ws_port}/mqtt")
            if broker.tls_port is not None:
                print(f"mqtts://{broker.host}:{broker.tls_port}")
            credentials = testbed.write_credentials()
            if broker.access is not None and credentials is not None:
                users = ", ".join(_describe(a) for a in broker.access.accounts)
                print(f"credentials: {credentials} (readable by you only); accounts: {users}")
            else:
                print("open: anonymous clients may use every topic")
            print(f"{broker.kind} log: {broker.log_path}", flush=True)
            print("rig: broker running; Ctrl-C stops it", file=sys.stderr, flush=True)
            while broker.is_running():
                time.sleep(_POLL_S)
            raise BrokerError(f"{broker.kind} broker exited on its own; see its log: {broker.log_path}")
        except KeyboardInterrupt:
            return common.EXIT_OK  # Ctrl-C and SIGTERM are how this command is meant to end


def _describe(account: Account) -> str:
    """An account as the accounts line shows it: user, topics, and the client id it is bound to."""
    bound = f", client id {account.client_id}" if account.client_id is not None else ""
    return f"{account.login.user} ({', '.join(account.patterns)}{bound})"
