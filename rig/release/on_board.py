"""A bundle on a board: deploy exactly it, and check on the board that it is there, byte for byte.

Both judge by what the board itself computes: a script in the raw REPL walks the board's whole
filesystem and hashes every file there with the board's own ``hashlib.sha256``, reading in 1 kB
chunks (a board's RAM holds no whole file). The host compares that with the bundle's manifest:
files missing, files changed, and files the bundle does not have (a stale ``x.py`` beside the
bundle's ``x.mpy`` would be imported instead of it). Only the files the manifest names board-local
(config.json, rig_manifest.json) may differ from board to board.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Callable
from dataclasses import dataclass, field

from mpremote.transport import TransportError
from mpremote.transport_serial import SerialTransport

from rig.board.board import Board
from rig.deploy.plan import MANIFEST, DeployItem, DeployPlan
from rig.deploy.sync import DeployReport, sync, work_bound
from rig.errors import DeployError
from rig.firmware_config import FirmwareConfig
from rig.release.bundle import Bundle
from rig.release.target import RuntimeRefused, check_runtime, runtime_key
from rig.runtime.identity import RuntimeIdentity, read_runtime

# Runs on the board: every file under / with its size and sha256, as one Python literal.
# ilistdir's type is 0 where the filesystem does not say (some host filesystems under the unix
# port), hence the stat; the function deletes itself so the board's globals stay as they were.
WALK_SCRIPT = """\
def _rig_walk(d, out):
    import os, hashlib, binascii
    b = bytearray(1024)
    m = memoryview(b)
    for e in os.ilistdir(d):
        p = d.rstrip('/') + '/' + e[0]
        if (e[1] or os.stat(p)[0]) & 0x4000:
            _rig_walk(p, out)
            continue
        h = hashlib.sha256()
        s = 0
        f = open(p, 'rb')
        while True:
            n = f.readinto(b)
            if not n:
                break
            h.update(m[:n])
            s += n
        f.close()
        out.append((p[1:], s, binascii.hexlify(h.digest()).decode()))
    return out
print(repr(_rig_walk('/', [])))
del _rig_walk
"""

REMOVE_SCRIPT = """\
import os
for p in {paths!r}:
    os.remove(p)
"""

# What a deploy removes when the bundle does not have it: modules, which an import could pick up
# instead of the bundle's. Other files (a log, a certificate put there by hand) are reported as
# extra and left alone: a deploy does not delete data it did not write.
CODE_SUFFIXES = (".py", ".mpy")

# The walk reads every byte on the board once, at flash speed; the bound leaves room for a
# board with a full filesystem.
WALK_BOUND = 120.0


@dataclass(frozen=True)
class Changed:
    """A file the board holds with other bytes than the bundle's."""

    path: str
    expected: str
    found: str


@dataclass(frozen=True)
class Differences:
    """How a board's files differ from a bundle: none of the three lists means the board holds it."""

    missing: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()
    changed: tuple[Changed, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.missing or self.extra or self.changed)

    def lines(self) -> list[str]:
        out = [f"missing: {p}" for p in self.missing]
        out += [
            f"changed: {c.path} (sha256 {c.found[:12]}, the bundle's {c.expected[:12]})" for c in self.changed
        ]
        out += [f"extra: {p} (not in the bundle)" for p in self.extra]
        return out


class ReleaseNotOnBoard(DeployError):
    """After a release deploy the board still lacks files of the bundle, or holds other bytes."""

    def __init__(self, board: str, bundle_hash: str, differences: Differences) -> None:
        self.board = board
        self.differences = differences
        lines = "; ".join(differences.lines())
        super().__init__(f"{board} does not hold bundle {bundle_hash[:12]} after deploying it: {lines}")


@dataclass(frozen=True)
class ReleaseCheck:
    """``rig release verify``'s answer: does the board run exactly this bundle on its runtime?
    ``runtime_problem`` says why not when its runtime is not one the bundle is built for."""

    board: str
    bundle_hash: str
    runtime: RuntimeIdentity
    differences: Differences
    runtime_problem: str | None = None

    @property
    def matches(self) -> bool:
        return self.runtime_problem is None and not self.differences


@dataclass
class ReleaseDeploy:
    """What deploying a bundle did: the transfer (``rig.deploy.sync``'s report), the modules
    removed because the bundle does not have them, and how the board differs from the bundle
    afterwards (empty: it holds exactly the bundle, besides its board-local files)."""

    bundle_hash: str
    runtime: RuntimeIdentity
    transfer: DeployReport
    removed: list[str] = field(default_factory=list)
    differences: Differences = field(default_factory=Differences)


def board_files(transport: SerialTransport) -> dict[str, tuple[int, str]]:
    """Every file on the board: path (relative to ``/``) -> (size, sha256), as the board hashed it."""
    try:
        out = transport.exec(WALK_SCRIPT)
        found = ast.literal_eval(out.decode().strip())
    except (TransportError, ValueError, SyntaxError, UnicodeDecodeError) as e:
        raise DeployError(f"could not hash the board's files on the board: {e}") from e
    return {str(path): (int(size), str(digest)) for path, size, digest in found}


def compare(bundle: Bundle, on_board: dict[str, tuple[int, str]]) -> Differences:
    """How ``on_board`` (from ``board_files``) differs from the bundle's manifest."""
    listed = bundle.manifest.by_path()
    local = set(bundle.manifest.board_local)
    changed = tuple(
        Changed(path, entry.sha256, on_board[path][1])
        for path, entry in sorted(listed.items())
        if path in on_board and on_board[path] != (entry.size, entry.sha256)
    )
    return Differences(
        missing=tuple(sorted(set(listed) - set(on_board))),
        extra=tuple(sorted(set(on_board) - set(listed) - local)),
        changed=changed,
    )


def verify_release(board: Board, bundle: Bundle, *, reset: bool = True) -> ReleaseCheck:
    """Whether ``board`` runs exactly ``bundle``: its runtime is one the bundle is built for, and
    its files are the bundle's. Looking interrupts the firmware; ``reset`` starts it again."""
    identity = read_runtime(board)
    problem = None
    try:
        check_runtime(board.name, identity, bundle.manifest.runtime, bundle.hash)
    except RuntimeRefused as e:
        problem = str(e)
    with board.repl(work=WALK_BOUND) as transport:
        differences = compare(bundle, board_files(transport))
    if reset:
        board.soft_reset()
    return ReleaseCheck(board.name, bundle.hash, identity, differences, problem)


def deploy_release(board: Board, bundle: Bundle, config: FirmwareConfig) -> ReleaseDeploy:
    """Put exactly ``bundle`` on ``board``, with ``config`` as its config file, then soft-reset it.

    Refused (``RuntimeRefused``, before anything is written) when the board runs a runtime the
    bundle is not built for. Only files whose hash differs are sent (``rig.deploy.sync``, the
    rig's one file transfer); modules the bundle does not have are removed (``CODE_SUFFIXES``);
    then every file is hashed on the board again and the differences left, if any, are in the
    result (other extra files, say): the caller decides (the gate stops that board).
    ``rig_manifest.json`` names the bundle, so the firmware's boot line reports the bundle's tree."""
    identity = read_runtime(board)
    check_runtime(board.name, identity, bundle.manifest.runtime, bundle.hash)
    if config.file_name not in bundle.manifest.board_local:
        raise DeployError(
            f"bundle {bundle.hash[:12]} reads its config from {', '.join(bundle.manifest.board_local)}, "
            f"not {config.file_name}"
        )
    plan = release_plan(bundle, identity, config)
    transfer = sync(board, plan, reset=False)
    with board.repl(work=WALK_BOUND + work_bound(plan)) as transport:
        before = compare(bundle, board_files(transport))
        stale = [
            p for p in before.extra if p.endswith(CODE_SUFFIXES) and "/" + p not in board.hardware_stand_ins
        ]
        if stale:
            try:
                transport.exec(REMOVE_SCRIPT.format(paths=["/" + p for p in stale]))
            except TransportError as e:
                raise DeployError(f"could not remove modules the bundle does not have: {e}") from e
        after = compare(bundle, board_files(transport)) if stale else before
    board.soft_reset()
    board.record_deploy(config)
    return ReleaseDeploy(bundle.hash, identity, transfer, stale, after)


def release_plan(bundle: Bundle, identity: RuntimeIdentity, config: FirmwareConfig) -> DeployPlan:
    """The bundle's files, the board's config and the deploy record, as ``rig.deploy`` plans them."""
    origin = f"bundle {bundle.hash[:12]}"
    items = [DeployItem(path, data, origin) for path, data in sorted(bundle.contents.items())]
    items.append(DeployItem(config.file_name, config.file_bytes(), "generated by the rig"))
    record = {
        "tree": DeployPlan(items).tree_hash,
        "release": bundle.hash,
        "runtime": runtime_key(identity),
        "files": {i.board_path: i.sha256 for i in items},
    }
    data = json.dumps(record, indent=1, sort_keys=True).encode()
    return DeployPlan(
        [*items, DeployItem(MANIFEST, data, "generated by the rig")], list(bundle.manifest.dependencies)
    )


def release_deployer(bundle: Bundle) -> Callable[[Board, FirmwareConfig], DeployReport]:
    """A deployer of ``bundle`` in the shape ``rig.strategy.FirmwareStrategy`` takes (its
    ``Deployer``), for a gate on a release: the strategy then deploys exactly the bundle, checks
    the boot line against the tree written, and records the transfer. A board that does not hold
    the bundle afterwards (files missing or changed) raises ``ReleaseNotOnBoard``; extra data files
    are left to the caller (``deploy_release`` names them)."""

    def deploy(board: Board, config: FirmwareConfig) -> DeployReport:
        done = deploy_release(board, bundle, config)
        if done.differences.missing or done.differences.changed:
            raise ReleaseNotOnBoard(board.name, bundle.hash, done.differences)
        return done.transfer

    return deploy
