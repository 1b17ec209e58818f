"""Puts a ``DeployPlan`` on a board in the raw REPL, writing only what changed, compressed.

A real board's console runs at 115200 baud, so a deploy costs its bytes: one probe round hashes
what the board holds (``rig.deploy.transfer``), only the files whose hash differs are sent,
deflated when the board has MicroPython's ``deflate`` module (1.21+) and as they are when it does
not, in pieces of dense bytes literals (``rig.deploy.pieces``, ``rig.deploy.wire_literal``), and
the board hashes what it wrote before the deploy counts. mpremote's ``fs_writefile`` would send
each 2 kB chunk as ``repr()`` (2-4 bytes per byte of a .mpy), with a round trip each.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from mpremote.transport_serial import SerialTransport

from rig.board.board import Board
from rig.deploy.pieces import Piece, pack, sizes_for
from rig.deploy.plan import DeployPlan
from rig.deploy.transfer import probe, send
from rig.errors import DeployError
from rig.evidence.run_record import DependencyInfo, FirmwareInfo


@dataclass
class DeployReport:
    """What one deploy did. ``dependencies`` are the locked packages installed, one per package."""

    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    bytes_written: int = 0
    seconds: float = 0.0
    bytes_sent: int = 0  # the source that carried the written files over the wire
    transfer: str = ""  # "deflate", "stored" (a board without deflate), "" when nothing was written
    tree_hash: str = ""
    files: dict[str, str] = field(default_factory=dict)  # board path -> sha256 of what was deployed
    dependencies: list[DependencyInfo] = field(default_factory=list)

    def summary(self) -> str:
        sent = f" ({self.transfer}, {self.bytes_sent} sent)" if self.transfer else ""
        return (
            f"deployed {len(self.written)} file(s), {self.bytes_written} bytes{sent}, "
            f"{len(self.unchanged)} unchanged, in {self.seconds:.2f}s (tree {self.tree_hash[:12]})"
        )

    def dependency_summary(self) -> str:
        """``umqtt.simple 1.3.4 (pypi), umqtt.robust 1.0 (pypi)``, as run.json's firmware words it."""
        return FirmwareInfo(dependencies=self.dependencies).dependency_summary()


# The bound of a deploy's work in the raw REPL: round trips, plus the bytes at the pace of the
# slowest link a board has. mpremote sends each 2 kB chunk as a Python literal (2-4 times its
# size) with a round trip each; a 115200-baud UART carries 11.5 kB/s, so 2 kB/s leaves room.
WORK_BASE_SECONDS = 30.0
SLOWEST_BYTES_PER_SECOND = 2_000


def work_bound(plan: DeployPlan) -> float:
    """How long writing ``plan`` may take in the raw REPL before the rig gives up on the board."""
    return WORK_BASE_SECONDS + sum(len(item.data) for item in plan.items) / SLOWEST_BYTES_PER_SECOND


def board_hashes(transport: SerialTransport, plan: DeployPlan) -> dict[str, str | None]:
    """The sha256 of each planned file on the board (None when missing), keyed by ``/`` + path;
    makes the plan's directories on the way."""
    return probe(transport, _paths(plan), ["/" + d for d in plan.directories]).hashes


def _paths(plan: DeployPlan) -> list[str]:
    return ["/" + item.board_path for item in plan.items]


def sync(
    board: Board,
    plan: DeployPlan,
    *,
    reset: bool = True,
    progress: Callable[[str, int, int], None] | None = None,
) -> DeployReport:
    """Write every file of ``plan`` whose hash differs on the board, then soft-reset it so that
    main.py runs. ``progress(path, done, total)`` is called after each file written.

    Every wait is the board's, bounded by the rig whatever the board prints: reaching the raw
    REPL (Ctrl-C, then a hard reset, each within ``board.timeout``), the work in it
    (``work_bound(plan)``) and the soft reset (``board.timeout``). A file the board does not hold
    afterwards exactly as planned, by the board's own sha256, raises ``DeployError`` naming it."""
    report = DeployReport(
        tree_hash=plan.tree_hash,
        files={i.board_path: i.sha256 for i in plan.items},
        dependencies=list(plan.dependencies),
    )
    started = time.monotonic()
    paths = _paths(plan)
    with board.repl(work=work_bound(plan)) as transport:
        found = probe(transport, paths, ["/" + d for d in plan.directories])
        changed = [(n, item) for n, item in enumerate(plan.items) if found.hashes[paths[n]] != item.sha256]
        dirty = {n for n, _ in changed}
        report.unchanged = [item.board_path for n, item in enumerate(plan.items) if n not in dirty]
        piece_bytes, window_bits = sizes_for(found.free)
        files = [(n, item.board_path, item.data) for n, item in changed]
        pieces = pack(files, found.inflate, piece_bytes, window_bits)
        origins = {item.board_path: item.origin for item in plan.items}
        sizes = {item.board_path: len(item.data) for _, item in changed}
        left = dict(sizes)

        def written(piece: Piece) -> None:
            for span in piece.spans:
                left[span.board_path] -= span.size
                if left[span.board_path] == 0:  # the file's last span: it is whole on the board
                    report.written.append(span.board_path)
                    report.bytes_written += sizes[span.board_path]
                    if progress is not None:
                        progress(span.board_path, len(report.written), len(changed))

        after, report.bytes_sent = send(
            transport, pieces, [n for n, _ in changed], lambda p: origins[p], after_piece=written
        )
        if pieces:
            report.transfer = "deflate" if any(p.compressed for p in pieces) else "stored"
        wrong = [item.board_path for (_, item), sha in zip(changed, after, strict=True) if sha != item.sha256]
        if wrong:
            raise DeployError(
                f"the board holds other content than was written for: {', '.join(wrong)} "
                f"(sent {report.transfer or 'nothing'}; its sha256 differs)"
            )
    if reset:
        board.soft_reset()
    report.seconds = time.monotonic() - started
    return report
