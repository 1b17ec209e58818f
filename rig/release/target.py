"""Which runtimes a bundle is for, and whether a board's runtime is one of them.

A bundle is built for one or more exact runtimes (``runtime_key``: implementation, version, build,
port and variant), all of which must load the same .mpy format, since its .mpy files are compiled
once. A board is accepted when the runtime it reports is one of them and loads that format; any
other is refused naming both, because a release is gated, and ships, with its runtime.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from rig.errors import ConfigError, DeployError
from rig.processes import SYSTEM_ENV, child_environment
from rig.release.manifest import RuntimeTarget
from rig.runtime.identity import SCRIPT, MpyAbi, RuntimeIdentity, RuntimeReadError, parse_answer

# Starting a unix port and printing a few attributes takes milliseconds.
READ_TIMEOUT = 20.0


class RuntimeRefused(DeployError):
    """A bundle met a board whose runtime it was not built for. ``board_runtime`` is what the
    board runs (described), ``bundle_runtime`` what the bundle was built for."""

    def __init__(self, board: str, board_runtime: str, bundle_runtime: str, bundle_hash: str) -> None:
        self.board = board
        self.board_runtime = board_runtime
        self.bundle_runtime = bundle_runtime
        super().__init__(
            f"{board} runs {board_runtime}, but bundle {bundle_hash[:12]} is built for {bundle_runtime}: "
            "refused (build the bundle for this runtime, or flash the board with the bundle's)"
        )


def runtime_key(identity: RuntimeIdentity) -> str:
    """The words that tell one runtime from another: ``micropython 1.29.0-preview
    (9458e3a23f on 2026-07-05) port linux variant standard``. The machine string is left out: it
    names the C compiler on the unix port, not what the firmware runs on."""
    build = f" ({identity.build})" if identity.build else ""
    variant = f" variant {identity.variant}" if identity.variant else ""
    return f"{identity.implementation} {identity.version}{build} port {identity.port}{variant}"


def target_for(runtimes: Sequence[RuntimeIdentity]) -> RuntimeTarget:
    """The target of a bundle for all of ``runtimes``: their one .mpy format, and their native
    architecture when they share one. Runtimes that load different formats need a bundle each."""
    if not runtimes:
        raise ConfigError("rig release build", "--runtime", "at least one runtime is needed")
    abis = {r.mpy for r in runtimes}
    if None in abis:
        # A runtime built without .mpy support (MICROPY_PERSISTENT_CODE_LOAD off) runs source only.
        return RuntimeTarget("", "", tuple(runtime_key(r) for r in runtimes))
    formats = {_format(a) for a in abis if a is not None}
    if len(formats) > 1:
        shown = "; ".join(f"{runtime_key(r)} loads mpy {_format(r.mpy)}" for r in runtimes if r.mpy)
        raise ConfigError(
            "rig release build",
            "--runtime",
            f"these runtimes load different .mpy formats ({shown}): build a bundle for each",
        )
    arches = {a.arch for a in abis if a is not None}
    arch = arches.pop() if len(arches) == 1 else None
    return RuntimeTarget(formats.pop(), arch or "", tuple(dict.fromkeys(runtime_key(r) for r in runtimes)))


def check_runtime(board: str, identity: RuntimeIdentity, target: RuntimeTarget, bundle_hash: str) -> None:
    """Raise ``RuntimeRefused`` unless ``identity`` is one of the runtimes ``target`` is for and
    loads its .mpy files."""
    loads = not target.mpy_abi or (identity.mpy is not None and _format(identity.mpy) == target.mpy_abi)
    if runtime_key(identity) in target.runtimes and loads:
        return
    raise RuntimeRefused(board, identity.describe(), target.describe(), bundle_hash)


def executable_runtime(micropython: str | Path) -> RuntimeIdentity:
    """The runtime of a MicroPython unix port executable (a virtual board's), read by running
    ``rig.runtime``'s own script there: the same answer a board started on it would give."""
    where = str(micropython)
    try:
        done = subprocess.run(
            [where, "-c", SCRIPT],
            capture_output=True,
            text=True,
            timeout=READ_TIMEOUT,
            check=False,
            env=child_environment(SYSTEM_ENV),
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(where, "(executable)", f"could not run it to read its runtime: {exc}") from exc
    try:
        return parse_answer(where, done.stdout)
    except RuntimeReadError as exc:
        raise ConfigError(where, "(executable)", f"{exc} (stderr: {done.stderr.strip()[-300:]!r})") from exc


def _format(abi: MpyAbi | None) -> str:
    return f"{abi.version}.{abi.sub_version}" if abi is not None else ""
