"""Puts a ``DeployPlan`` on a board through mpremote, writing only what changed."""

from __future__ import annotations

import ast
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from mpremote.transport import TransportError
from mpremote.transport_serial import SerialTransport

from rig.board.board import Board
from rig.deploy.plan import DeployPlan
from rig.errors import DeployError
from rig.evidence.run_record import DependencyInfo, FirmwareInfo

# Runs on the board: makes the directories and hashes every planned file in one round trip,
# instead of one round trip per file. Missing files and boards without hashlib give None.
BOARD_SCRIPT = """
import os
try:
    import hashlib, binascii
except ImportError:
    hashlib = None
for d in {dirs!r}:
    try:
        os.mkdir(d)
    except OSError:
        pass
def _h(p):
    if hashlib is None:
        return None
    try:
        f = open(p, 'rb')
    except OSError:
        return None
    d = hashlib.sha256()
    b = bytearray(1024)
    m = memoryview(b)
    while True:
        n = f.readinto(b)
        if not n:
            break
        d.update(m[:n])
    f.close()
    return binascii.hexlify(d.digest()).decode()
print(repr([_h(p) for p in {paths!r}]))
"""


@dataclass
class DeployReport:
    """What one deploy did. ``dependencies`` are the locked packages installed, one per package."""

    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    bytes_written: int = 0
    seconds: float = 0.0
    tree_hash: str = ""
    files: dict[str, str] = field(default_factory=dict)  # board path -> sha256 of what was deployed
    dependencies: list[DependencyInfo] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"deployed {len(self.written)} file(s), {self.bytes_written} bytes, "
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
    paths = ["/" + item.board_path for item in plan.items]
    script = BOARD_SCRIPT.format(dirs=["/" + d for d in plan.directories], paths=paths)
    try:
        out = transport.exec(script)
        hashes = ast.literal_eval(out.decode().strip())
    except (TransportError, ValueError, SyntaxError) as e:
        raise DeployError(f"could not read file hashes from the board: {e}") from e
    return dict(zip(paths, hashes, strict=True))


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
    (``work_bound(plan)``) and the soft reset (``board.timeout``)."""
    report = DeployReport(
        tree_hash=plan.tree_hash,
        files={i.board_path: i.sha256 for i in plan.items},
        dependencies=list(plan.dependencies),
    )
    started = time.monotonic()
    with board.repl(work=work_bound(plan)) as transport:
        on_board = board_hashes(transport, plan)
        changed = [item for item in plan.items if on_board["/" + item.board_path] != item.sha256]
        report.unchanged = [item.board_path for item in plan.items if item not in changed]
        for done, item in enumerate(changed, start=1):
            try:
                transport.fs_writefile("/" + item.board_path, item.data, chunk_size=2048)
            except TransportError as e:
                raise DeployError(f"writing {item.board_path} ({item.origin}) failed: {e}") from e
            report.written.append(item.board_path)
            report.bytes_written += len(item.data)
            if progress is not None:
                progress(item.board_path, done, len(changed))
        if changed:
            # One more round: a write that did not land must fail here, not as a mystery later.
            after = board_hashes(transport, DeployPlan(changed))
            wrong = [i.board_path for i in changed if after["/" + i.board_path] != i.sha256]
            if wrong:
                raise DeployError(f"the board holds other content than was written for: {', '.join(wrong)}")
    if reset:
        board.soft_reset()
    report.seconds = time.monotonic() - started
    return report
