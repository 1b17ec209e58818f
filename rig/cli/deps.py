"""``rig deps lock|export``: pin and lock the firmware's dependencies; mirror them for an offline lab."""

from __future__ import annotations

import argparse
from pathlib import Path

from rig.cli import common
from rig.deploy.cache import default_cache_dir
from rig.deploy.dependencies import SourceSet
from rig.deploy.export import export_index
from rig.deploy.lockfile import Lock
from rig.deploy.locking import lock_firmware
from rig.errors import ConfigError

HELP = "lock the firmware's dependencies (rig deps lock), or mirror the locked ones (rig deps export DIR)"


def setup(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "lock: resolve the pins of FIRMWARE/package.json (with --upgrade: the newest versions, then "
        "pin them) and write FIRMWARE/package.lock.json, every file installed on the board with its "
        "package, version, source and sha256. A deploy installs exactly those files. "
        "export DIR: write the locked files as a local mip v2 index, for --index / $RIG_DEPS_INDEX."
    )
    actions = parser.add_subparsers(dest="deps_action", metavar="ACTION", required=True)
    shared = common.common_options()
    lock = actions.add_parser(
        "lock", parents=[shared], help="write package.lock.json from package.json's pins"
    )
    _source_options(lock)
    lock.add_argument(
        "--upgrade",
        action="store_true",
        help="ask the sources for the newest versions, rewrite the pins in package.json and the lock",
    )
    export = actions.add_parser(
        "export", parents=[shared], help="write the locked files as a local mip index"
    )
    export.add_argument("directory", type=Path, metavar="DIR", help="the index directory to write")
    _source_options(export)


def _source_options(parser: argparse.ArgumentParser) -> None:
    common.add_firmware_options(parser)
    parser.add_argument(
        "--timeout",
        type=common.seconds,
        default=10.0,
        metavar="S",
        help="bound of each source's answer for one package (default: %(default)gs)",
    )


def run(args: argparse.Namespace) -> int:
    firmware: Path = args.firmware
    if not firmware.is_dir():
        raise ConfigError("--firmware", "firmware", f"{firmware} is not a directory")
    index: Path | None = args.deps_index
    if index is not None and not index.is_dir():
        raise ConfigError("--deps-index", "deps_index", f"{index} is not a directory")
    if not args.timeout > 0:
        raise ConfigError("--timeout", "timeout", "must be more than 0")
    cache: Path = args.deps_cache if args.deps_cache is not None else default_cache_dir()
    sources = SourceSet(local_index=index, offline=args.offline, timeout=args.timeout)
    if args.deps_action == "lock":
        outcome = lock_firmware(firmware, cache, sources, upgrade=args.upgrade)
        print(f"locked {len(outcome.lock.packages)} package(s) in {outcome.lock_file}:")
        for line in describe(outcome.lock, outcome.previous):
            print(f"  {line}")
        if outcome.pins_changed:
            pins = ", ".join(f"{name} {version}" for name, version in outcome.lock.requires.items())
            print(f"pinned in {outcome.package_json}: {pins}")
        return common.EXIT_OK
    files = export_index(firmware, cache, sources, args.directory)
    print(f"exported {len(files)} locked file(s) to {args.directory}")
    return common.EXIT_OK


def describe(lock: Lock, previous: Lock | None) -> list[str]:
    """One line per locked package and file, saying what changed since ``previous``."""
    before = previous.versions() if previous is not None else {}
    lines = []
    for package in lock.packages:
        was = before.get(package.name)
        change = "" if was in (None, package.version) else f" (was {was})"
        lines.append(f"{package.name} {package.version} from {package.source}{change}")
        lines += [f"  {f.board_path} sha256 {f.sha256}" for f in package.files]
    return lines
