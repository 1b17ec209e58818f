"""``rig lab``: share this host's boards through labgrid (``export``, ``places``)."""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path

from ruamel.yaml import YAML

from rig.cli import common, lab_health
from rig.errors import ConfigError
from rig.inventory.spec import LabgridSpec
from rig.lab import export
from rig.lab.client import create_places
from rig.lab.places import COORDINATOR_ENV, DEFAULT_COORDINATOR, coordinator_of

HELP = "share this host's boards through labgrid: an exporter configuration, and places for them"


def setup(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "export: write a labgrid exporter configuration for the inventory's boards plugged into "
        "this host (USBSerialPort matched on ID_SERIAL_SHORT, or on @ID_PATH when the adapter has "
        "no serial number), one resource group per board, named after it. places: create a place "
        "per such board at the coordinator, matching its group on this exporter, tagged "
        "kind=<kind> and <tag>=yes for reserving."
    )
    sub = parser.add_subparsers(dest="lab_command", metavar="ACTION", required=True)
    for name, help_text in (
        ("export", "write the exporter configuration (labgrid-exporter CONFIG)"),
        ("places", "create the places and their tags at the coordinator"),
    ):
        # The common options again, so that they read naturally after the action
        # (``rig lab export --inventory FILE``).
        action = sub.add_parser(name, help=help_text, parents=[common.common_options()])
        action.add_argument(
            "--exporter",
            default=socket.gethostname(),
            metavar="NAME",
            help="the exporter's name, as given to labgrid-exporter --name (default: this host's name)",
        )
        if name == "export":
            action.add_argument(
                "-o", "--output", type=Path, metavar="FILE", help="write here instead of standard output"
            )
        else:
            action.add_argument(
                "--coordinator",
                metavar="HOST:PORT",
                help=f"the coordinator (default: ${COORDINATOR_ENV}, else {DEFAULT_COORDINATOR})",
            )
    health = sub.add_parser(
        "health", help="each board's health state, or set one by hand", parents=[common.common_options()]
    )
    lab_health.setup(health)


def run(args: argparse.Namespace) -> int:
    if args.lab_command == "health":
        return lab_health.run(args)
    inventory = common.load(args)
    boards = export.on_this_host(inventory.boards, common.list_ports())
    if not boards:
        raise ConfigError(
            str(inventory.path), "boards", "none of the inventory's boards is plugged into this host"
        )
    if args.lab_command == "export":
        config = export.exporter_config([(spec, export.udev_properties(device)) for spec, device in boards])
        yaml = YAML()
        yaml.default_flow_style = False
        if args.output is None:
            yaml.dump(config, sys.stdout)
        else:
            with args.output.open("w") as f:
                yaml.dump(config, f)
            print(
                f"wrote {args.output}: {', '.join(config)}; "
                f"run: labgrid-exporter --name {args.exporter} {args.output}"
            )
        return common.EXIT_OK
    coordinator = coordinator_of(LabgridSpec(coordinator=args.coordinator))
    plan = export.place_plan([spec for spec, _ in boards], args.exporter)
    for place in create_places(coordinator, plan, args.workdir / "labgrid-places.log"):
        tags = " ".join(f"{k}={v}" for k, v in sorted(place.tags.items()))
        print(f"{place.name}: {tags} ({place.describe()})")
    return common.EXIT_OK
