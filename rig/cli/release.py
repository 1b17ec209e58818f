"""``rig release build|verify``: make the bundle that ships; ask whether a board runs exactly it."""

from __future__ import annotations

import argparse
from pathlib import Path

from rig.board.virtual import find_micropython
from rig.cli import common
from rig.deploy.cache import default_cache_dir
from rig.deploy.dependencies import SourceSet
from rig.errors import ConfigError
from rig.release.build import build_bundle
from rig.release.bundle import open_bundle
from rig.release.on_board import verify_release
from rig.release.target import executable_runtime, runtime_key, target_for
from rig.runtime.identity import RuntimeIdentity, read_runtime

HELP = "build the release bundle from the firmware (rig release build), or verify a board runs it"
DEFAULT_OUT = Path("artifacts") / "release"


def setup(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "build: the app's files compiled to .mpy for the target runtime (main.py and boot.py stay "
        "source), the locked dependencies and a manifest (release.json: every file with its sha256 "
        "and size, the runtimes it is for, the source commit, the bundle hash), written as a folder "
        "and a .tar; the same inputs give the same bundle. "
        "verify BOARD BUNDLE: does BOARD run exactly BUNDLE? Every file is hashed on the board; "
        "yes exits 0, no exits 1 and names the files missing, changed or extra (docs/release.md)."
    )
    actions = parser.add_subparsers(dest="release_action", metavar="ACTION", required=True)
    build = actions.add_parser(
        "build",
        parents=[common.common_options(), common.board_options()],
        help="build the release bundle from the firmware",
    )
    common.add_firmware_options(build)
    build.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        metavar="DIR",
        help="where the bundle's folder and .tar are written (default: %(default)s)",
    )
    build.add_argument(
        "--runtime",
        action="append",
        default=[],
        metavar="RUNTIME",
        help="a runtime the bundle is for: a MicroPython unix port executable (a virtual board's "
        "runtime), or an inventory board whose runtime is read from it; repeat for several runtimes "
        "that load the same .mpy format (default: the virtual board's, --micropython)",
    )
    verify = actions.add_parser(
        "verify",
        parents=[common.common_options(), common.board_options()],
        help="say whether a board runs exactly a bundle (exit 0) or not (exit 1, naming the files)",
    )
    verify.add_argument("board", metavar="BOARD", help="an inventory board name, or 'virtual'")
    verify.add_argument("bundle", type=Path, metavar="BUNDLE", help="the bundle's folder or .tar")


def run(args: argparse.Namespace) -> int:
    if args.release_action == "build":
        return _build(args)
    return _verify(args)


def _build(args: argparse.Namespace) -> int:
    runtimes = [_runtime(args, given) for given in args.runtime] or [
        executable_runtime(find_micropython(args.micropython))
    ]
    target = target_for(runtimes)
    cache: Path = args.deps_cache if args.deps_cache is not None else default_cache_dir()
    sources = SourceSet(local_index=args.deps_index, offline=args.offline)
    bundle = build_bundle(args.firmware, args.out, target, cache_dir=cache, sources=sources)
    manifest = bundle.manifest
    commit = manifest.source.commit[:12] or "(not a git checkout)"
    print(f"bundle {bundle.hash}")
    print(f"  folder  {bundle.path}")
    print(f"  tar     {bundle.tar}")
    print(f"  for     {target.describe()}")
    print(f"  source  {commit}{' with uncommitted changes' if manifest.source.dirty else ''}")
    size = sum(f.size for f in manifest.files)
    print(f"  files   {len(manifest.files)}, {size} bytes ({manifest.compiler})")
    return common.EXIT_OK


def _runtime(args: argparse.Namespace, given: str) -> RuntimeIdentity:
    """``given`` as an executable when it is one, else as a board to read the runtime from."""
    if Path(given).is_file():
        return executable_runtime(given)
    board_args = argparse.Namespace(**{**vars(args), "board": given})
    try:
        common.resolve_board(common.load(board_args), given)
    except ConfigError as e:
        raise ConfigError("--runtime", given, f"neither a file nor a board of the inventory ({e})") from e
    with common.open_board(board_args, "rig release build") as (_spec, board):
        identity = read_runtime(board)
        board.soft_reset()  # reading it stopped the firmware; leave the board running as found
    return identity


def _verify(args: argparse.Namespace) -> int:
    bundle = open_bundle(args.bundle)
    with common.open_board(args, "rig release verify") as (spec, board):
        check = verify_release(board, bundle)
    if check.matches:
        print(f"yes: {spec.name} runs bundle {bundle.hash} on {runtime_key(check.runtime)}")
        return common.EXIT_OK
    print(f"no: {spec.name} does not run bundle {bundle.hash} exactly")
    if check.runtime_problem is not None:
        print(f"  runtime: {check.runtime_problem}")
    for line in check.differences.lines():
        print(f"  {line}")
    return common.EXIT_FAILED
