"""A bigger lab on one host: 16 virtual boards in one ``rig gate`` against one board alone.

A lab host with a USB hub may carry a dozen boards, all run by one ``rig gate``. What does each
board cost the host, and do sixteen fit on two cores? Two ``rig gate`` runs, one after the other
in this run, on one inventory whose one entry is a virtual board with ``count: N``:

- the baseline: ``rig gate --boards vb-1`` (one board, the suite alone on the machine);
- the figure: ``rig gate --jobs N`` (all N boards at once, each with its own pytest, MicroPython
  unix port, broker, network namespace and run folder).

Goal (issue 19): the N-board wall time at most ``TARGET`` times the one board's, and no failure.
Nothing is asserted: the ratio, the failures and whether the goal is met are reported.

Each board's run is accounted as a whole process tree (``benchmarks.tree_cost``: a cgroup per
board that its pytest joins at start, so the MicroPython port, the broker and every helper,
even one that lived a tenth of a second, are counted): its CPU-seconds (user + system) and its
peak memory, given as percentiles across the N boards against the one board alone. The gate's
own CPU (planning, status lines, audits, reports) is what its tree used beyond the boards'.

Which suite: the gate's HIL suite (``tests/hil``) less three modules, ``SELECT`` (set
``$BENCH_LAB_SCALE_K`` to another ``-k`` expression, or to nothing for every test;
``$BENCH_LAB_SCALE_BOARDS`` sets N). What stays is the echo loop and messages, the faults, the
disconnects, keepalive, session, security, status, the console and the offline reasons. Left out,
measured on 2026-12-06 (issue 19):

- ``test_soak``: a throughput test (3,000 echoes as fast as the board goes), CPU-bound by design,
  so sixteen at once cost sixteen times the CPU; and the board keeps circulating its working set
  after the test while the wire witness decodes the test's capture with scapy, which on 1/16 of
  the CPU falls behind for good (one board passed 84,000 echoes; the run was stopped at 544 s);
- ``test_several_boards``: each run claims a second board of the inventory (vb-1's run took
  vb-10), which in a 16-board gate is another run's; 9 runs were still in it when the gate was
  stopped at 521 s (the module was being written that session);
- ``test_wire_witness``: new this session and timing-bound under load (2 failures on 1 board of 16).

Quick mode (the smoke test) runs 2 boards and two tests (the first echo, a fault).
"""

from __future__ import annotations

import json
import os
import resource
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import stats
from benchmarks.runner import BenchContext, Figure
from benchmarks.tree_cost import CgroupsUnavailable, Cost, TreeCost
from rig.processes import PYTHON_ENV, SYSTEM_ENV, ChildProcess, child_environment

ORDER = 95
BUDGET_S = 480
# The whole suite alone (about 100 s), then on 16 boards at once.
LIMIT_S = 1500
BOARDS = 16
TARGET = 2.0
# One board's run bounded well above what the whole suite takes alone (about 100 s).
GATE_TIMEOUT_S = 900
QUICK_BOARDS = 2
QUICK_TESTS = "test_boots_connects_and_publishes_hello or test_link_down_is_detected_and_the_board_comes_back"
SELECT = "not soak and not several_boards and not wire_witness"
BOARDS_ENV = "BENCH_LAB_SCALE_BOARDS"
SELECT_ENV = "BENCH_LAB_SCALE_K"
FAILED = ("failed", "error")

INVENTORY = """\
boards:
  - name: vb
    kind: virtual
    count: {count}
"""


@dataclass
class BoardResult:
    name: str
    tests: int = 0
    passed: int = 0
    failed: list[str] = field(default_factory=list)  # nodeids that failed or errored
    suite_s: float = 0.0  # its pytest session, start to end (run.json)
    finished: float = 0.0  # when its pytest session ended (run.json, wall clock); 0 if it did not
    cost: Cost | None = None


@dataclass
class GateRun:
    boards_asked: int
    wall: float
    cpu: float  # CPU seconds of the gate and every process under it
    code: int
    boards: dict[str, BoardResult]
    log: Path
    began: float = 0.0  # wall clock at the gate's start

    @property
    def stopped(self) -> bool:
        """The gate was stopped (exit 130, or killed) rather than finishing on its own."""
        return self.code not in (0, 1, 3)

    @property
    def tail(self) -> float:
        """From the last board's pytest session end to the gate's exit: the gate's own work after
        the suites (each folder's secrets audit, JUnit, report, results store)."""
        ends = [b.finished for b in self.boards.values() if b.finished]
        return self.began + self.wall - max(ends) if ends else 0.0

    @property
    def failures(self) -> int:
        """Failed tests, plus every board asked for that left no run record."""
        missing = self.boards_asked - len(self.boards)
        return sum(len(b.failed) for b in self.boards.values()) + missing

    @property
    def board_cpu(self) -> float:
        return sum(b.cost.cpu_s for b in self.boards.values() if b.cost is not None)

    def costs(self) -> list[Cost]:
        return [b.cost for b in self.boards.values() if b.cost is not None]

    def summary(self) -> str:
        passed = sum(b.passed for b in self.boards.values())
        tests = sum(b.tests for b in self.boards.values())
        failed = sorted({nodeid for b in self.boards.values() for nodeid in b.failed})
        ran = f"{len(self.boards)}/{self.boards_asked} boards"
        text = f"exit {self.code}, {passed}/{tests} tests passed on {ran}"
        return text + (f"; failed: {', '.join(failed[:5])}" if failed else "")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_gate(
    ctx: BenchContext,
    inventory: Path,
    out: Path,
    boards: list[str],
    pytest_args: list[str],
    options: list[str],
) -> GateRun:
    """One ``rig gate`` in a subprocess, each of ``boards`` accounted in a group of its own."""
    command = [
        sys.executable, "-m", "rig.cli", "gate",
        "--firmware", str(ctx.root / "firmware"),
        "--inventory", str(inventory),
        "--suite", str(ctx.root / "tests" / "hil"),
        "--out", str(out),
        "--timeout", str(GATE_TIMEOUT_S),
        *options,
    ]  # fmt: skip
    if pytest_args:
        command += ["--", *pytest_args]
    base = child_environment(SYSTEM_ENV, PYTHON_ENV)
    tree: TreeCost | None = None
    try:
        tree = TreeCost.create(
            boards, ctx.tmp / f"hook-{out.name}", f"rig-bench-lab-scale-{os.getpid()}-{out.name}"
        )
        env = tree.env(base)
    except CgroupsUnavailable as e:
        ctx.log(f"per-board cost not measured: {e}")
        env = base
    log = out.with_suffix(".log")
    cpu_before = _children_cpu()
    began = time.time()
    started = time.monotonic()
    try:
        if tree is not None:
            tree.start_sampling()
        with log.open("w") as output:
            gate = ChildProcess.spawn(
                command,
                name="rig gate",
                stdout=output.fileno(),
                stderr=subprocess.STDOUT,
                cwd=ctx.root,
                env=env,
            )
            try:
                gate.wait_exited(GATE_TIMEOUT_S + 120)
            finally:
                code = gate.stop(10.0)
        wall = time.monotonic() - started
        cpu = _children_cpu() - cpu_before
        if tree is not None:
            tree.stop_sampling()
        results = _board_results(out)
        if tree is not None:
            for name, result in results.items():
                if name in boards:
                    result.cost = tree.cost(name)
    finally:
        if tree is not None:
            for problem in tree.close():
                ctx.log(problem)
    return GateRun(len(boards), wall, cpu, code, results, log, began)


def _board_results(out: Path) -> dict[str, BoardResult]:
    """Per board (a retried board: its retry, whose result counts), from its run.json."""
    found: dict[str, BoardResult] = {}
    for run_json in sorted(out.glob("*/run.json")):
        name = run_json.parent.name.split("-retry")[0]
        record = json.loads(run_json.read_text())
        tests = record.get("tests", [])
        found[name] = BoardResult(
            name,
            tests=len(tests),
            passed=sum(t["outcome"] == "passed" for t in tests),
            failed=[t["nodeid"] for t in tests if t["outcome"] in FAILED],
            suite_s=(record.get("finished") or record["started"]) - record["started"],
            finished=record.get("finished") or 0.0,
        )
    return found


def percentiles(xs: list[float]) -> dict[str, float]:
    """p10, p50, p90 and the max across boards ({} for fewer than two)."""
    if len(xs) < 2:
        return {}
    return {
        "p10": stats.percentile(xs, 10),
        "p50": stats.percentile(xs, 50),
        "p90": stats.percentile(xs, 90),
        "max": max(xs),
    }


def _show_failure(ctx: BenchContext, gate: GateRun) -> None:
    ctx.log(f"gate exit {gate.code}; its output: {gate.log}")
    sys.stderr.write(gate.log.read_text()[-3000:])


def run(ctx: BenchContext) -> list[Figure]:
    boards = QUICK_BOARDS if ctx.quick else int(os.environ.get(BOARDS_ENV) or BOARDS)
    select = QUICK_TESTS if ctx.quick else os.environ.get(SELECT_ENV, SELECT)
    pytest_args = ["-k", select] if select else []
    suite = f"tests/hil -k {shlex.quote(select)}" if select else "the whole HIL suite (tests/hil)"
    names = [f"vb-{i}" for i in range(1, boards + 1)]
    inventory = ctx.tmp / "boards.yaml"
    inventory.write_text(INVENTORY.format(count=boards))

    ctx.log(f"{suite} on 1 board (rig gate --boards vb-1)")
    one = run_gate(ctx, inventory, ctx.tmp / "one", names[:1], pytest_args, ["--boards", "vb-1"])
    ctx.log(f"  {one.wall:.1f}s, {one.summary()}")
    ctx.log(f"{suite} on {boards} boards at once (rig gate --jobs {boards})")
    many = run_gate(ctx, inventory, ctx.tmp / "many", names, pytest_args, ["--jobs", str(boards)])
    ctx.log(f"  {many.wall:.1f}s, {many.summary()}")
    for gate in (one, many):
        if gate.code != 0:
            _show_failure(ctx, gate)

    cores = os.cpu_count() or 1
    ratio = many.wall / one.wall
    if one.code != 0 or many.code != 0 or many.failures or one.failures:
        met = "NOT met: a gate did not pass"
    else:
        met = "met" if ratio <= TARGET else "NOT met: slower than the target"
    verdicts = f"1 board: {one.summary()}; {boards} boards: {many.summary()}"
    figures = [
        Figure.single(
            f"lab_scale.gate.{boards}_boards.wall",
            many.wall,
            "s",
            baseline_name="the same suite on 1 board (rig gate)",
            baseline_value=one.wall,
            notes=f"goal <= {TARGET:g}x and 0 failures on a {cores}-core machine: {met}; suite: {suite}; "
            f"{verdicts}",
        ),
        Figure.single(
            f"lab_scale.gate.{boards}_boards.failures",
            many.failures,
            "tests",
            baseline_name="the 1-board run",
            baseline_value=one.failures,
            notes="failed or errored tests across the boards, plus boards that left no run record",
        ),
        Figure.single(
            "lab_scale.gate.cpu_busy",
            many.cpu / (many.wall * cores),
            "share of cores",
            baseline_name="the 1-board run",
            baseline_value=one.cpu / (one.wall * cores),
            notes=f"{many.cpu:.0f} cpu-s over {many.wall:.0f}s on {cores} cores, against {one.cpu:.0f} cpu-s "
            f"over {one.wall:.0f}s; near 1 means the boards wait on the CPU",
        ),
        Figure.from_samples(
            "lab_scale.board.suite_time",
            [b.suite_s for b in many.boards.values() if b.suite_s > 0] or [0.0],
            "s",
            baseline_name="the board alone",
            baseline=[b.suite_s for b in one.boards.values()],
            notes="each board's pytest session, start to end (run.json)",
        ),
    ]
    costs, alone = many.costs(), one.costs()
    if not costs or not alone:
        return figures
    cpu = [c.cpu_s for c in costs]
    rss = [c.peak_rss_mib for c in costs]
    charge = [c.peak_charge_mib for c in costs]
    unjoined = [b.name for b in many.boards.values() if b.cost is not None and not b.cost.joined]
    tree = "pytest, the MicroPython unix port, the broker and every helper they started"
    figures += [
        Figure.single(
            "lab_scale.board.cpu_s",
            stats.median(cpu),
            "cpu-s",
            baseline_name="the board alone",
            baseline_value=alone[0].cpu_s,
            samples=len(cpu),
            spread=percentiles(cpu),
            notes=f"user + system CPU of each board's whole tree ({tree}), median across {len(cpu)} boards"
            + (f"; NOT accounted (the hook did not run): {', '.join(unjoined)}" if unjoined else ""),
        ),
        Figure.single(
            "lab_scale.board.peak_rss",
            stats.median(rss),
            "MiB",
            baseline_name="the board alone",
            baseline_value=alone[0].peak_rss_mib,
            samples=len(rss),
            spread=percentiles(rss),
            notes="peak of the sum of the resident sets of each board's tree, sampled every second "
            "(shared libraries counted in every process that maps them)",
        ),
        Figure.single(
            "lab_scale.board.peak_charge",
            stats.median(charge),
            "MiB",
            baseline_name="the board alone",
            baseline_value=alone[0].peak_charge_mib,
            samples=len(charge),
            spread=percentiles(charge),
            notes="each board's cgroup peak memory charge: its processes' memory and the page cache "
            "they brought in (files a board read first are charged to it, not to the others)",
        ),
        Figure.single(
            "lab_scale.gate.tail",
            many.tail,
            "s",
            baseline_name="the 1-board gate",
            baseline_value=one.tail,
            notes="from the last board's pytest session end to the gate's exit: the gate's own work "
            "after the suites (every folder's secrets audit, JUnit, report, results store)",
        ),
        Figure.single(
            "lab_scale.gate.own_cpu_s",
            max(0.0, many.cpu - many.board_cpu),
            "cpu-s",
            baseline_name="the 1-board gate",
            baseline_value=max(0.0, one.cpu - one.board_cpu),
            notes="the gate process's own CPU (plan, status lines, audits, JUnit, report), the whole "
            "tree's less the boards'"
            + ("; NOT measured: the gate was stopped before it ended" if many.stopped else ""),
        ),
    ]
    return figures


if __name__ == "__main__":  # python -m benchmarks.bench_lab_scale [--quick]: this module alone
    from benchmarks import runner

    result = runner.run_module("lab_scale", limit=LIMIT_S, quick="--quick" in sys.argv)
    print(runner.table({"benchmarks": {"lab_scale": result}, "total_seconds": result["seconds"]}))
