"""Parallel boards: the whole HIL suite on 4 virtual boards at once against the suite on 1 board.

Both are ``rig gate`` runs in a subprocess, one after the other in this run, on one inventory
whose one entry is a virtual board with ``count: 4`` (boards vb-1 .. vb-4):

- the baseline: ``rig gate --boards vb-1`` (one board, the suite alone on the machine);
- the figure: ``rig gate --jobs 4`` (the four boards at once, each with its own pytest,
  MicroPython, broker and network namespace).

The ratio of the two wall times is the cost of running four boards instead of one; the target
is 1.5 on a 2-core machine, where four boards cannot be had for the price of one unless the
suite mostly waits (on the board's loop period, the broker, the keepalives of the fault tests).

To tell why when it is off, each run also reports the CPU the gate and everything under it
used (``RUSAGE_CHILDREN`` across the run: the gate subprocess, reaped here, had reaped its
pytests and they their boards and brokers) as a share of the machine's cores over the wall
time, and each board's own session time from its run.json (pytest session start to end): a
suite slowed by CPU shows every board slower with the cores near 100 %; a shared lock or a
serialised step shows the boards one after another in their start times with the cores idle.

In quick mode (smoke tests) the suite is cut to one test and the boards to two.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.runner import BenchContext, Figure

ORDER = 90
BUDGET_S = 330
# The whole suite twice (alone, then four at once): more than the runner's default limit.
LIMIT_S = 600
BOARDS = 4
TARGET = 1.5
# A gate run bounded well above what the whole suite takes (about 100 s on one board).
GATE_TIMEOUT_S = 420

INVENTORY = """\
boards:
  - name: vb
    kind: virtual
    count: {count}
"""


@dataclass
class GateRun:
    wall: float
    cpu: float  # CPU seconds of the gate and every process under it
    code: int
    boards: dict[str, tuple[float, float, int, int]]  # name -> (first start, end, passed, tests)
    log: Path

    @property
    def busy(self) -> float:
        """The share of the machine's cores the run kept busy over its wall time."""
        return self.cpu / (self.wall * (os.cpu_count() or 1))

    def suite_times(self) -> list[float]:
        return [end - start for start, end, _, _ in self.boards.values()]

    def summary(self) -> str:
        counts = ", ".join(f"{name} {passed}/{tests}" for name, (_, _, passed, tests) in self.boards.items())
        return f"exit {self.code}, passed {counts}"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_gate(ctx: BenchContext, inventory: Path, out: Path, *options: str) -> GateRun:
    suite = ctx.root / "tests" / "hil"
    command = [
        sys.executable, "-m", "rig.cli", "gate",
        "--firmware", str(ctx.root / "firmware"),
        "--inventory", str(inventory),
        "--suite", str(suite),
        "--out", str(out),
        "--timeout", str(GATE_TIMEOUT_S),
        *options,
    ]  # fmt: skip
    if ctx.quick:
        command += ["--", "-k", "test_boots_connects_and_publishes_hello"]
    log = out.with_suffix(".log")
    cpu_before = _children_cpu()
    started = time.monotonic()
    with log.open("w") as output:
        gate = ctx.spawn(command, stdout=output.fileno(), cwd=ctx.root)
        code = gate.wait(timeout=GATE_TIMEOUT_S + 60)
    wall = time.monotonic() - started
    return GateRun(wall, _children_cpu() - cpu_before, code, _board_times(out), log)


def _board_times(out: Path) -> dict[str, tuple[float, float, int, int]]:
    """Per board folder: when its pytest session started and ended (run.json: board start and
    deploy included), tests passed, tests."""
    found = {}
    for run_json in sorted(out.glob("*/run.json")):
        record = json.loads(run_json.read_text())
        tests = record.get("tests", [])
        passed = sum(t["outcome"] == "passed" for t in tests)
        found[run_json.parent.name] = (record["started"], record.get("finished") or 0.0, passed, len(tests))
    return found


def run(ctx: BenchContext) -> list[Figure]:
    boards = 2 if ctx.quick else BOARDS
    inventory = ctx.tmp / "boards.yaml"
    inventory.write_text(INVENTORY.format(count=boards))
    ctx.log("the HIL suite on 1 board (rig gate --boards vb-1)")
    one = run_gate(ctx, inventory, ctx.tmp / "one", "--boards", "vb-1")
    ctx.log(f"  {one.wall:.1f}s, {one.summary()}")
    ctx.log(f"the HIL suite on {boards} boards at once (rig gate --jobs {boards})")
    many = run_gate(ctx, inventory, ctx.tmp / "many", "--jobs", str(boards))
    ctx.log(f"  {many.wall:.1f}s, {many.summary()}")
    for gate in (one, many):
        if gate.code != 0:
            ctx.log(f"gate exit {gate.code}; its output: {gate.log}")
            sys.stderr.write(gate.log.read_text()[-2000:])
            for log in sorted(gate.log.with_suffix("").glob("*/pytest.log"))[:1]:
                sys.stderr.write(f"--- {log}\n" + log.read_text()[-6000:])
    ratio = many.wall / one.wall
    met = "met" if ratio <= TARGET else "NOT met"
    if one.code != 0 or many.code != 0:
        met = "not comparable: a gate did not pass (its verdicts follow)"
    starts = sorted(start for start, _, _, _ in many.boards.values())
    spread = starts[-1] - starts[0] if starts else 0.0
    cores = os.cpu_count() or 1
    verdicts = f"1 board: {one.summary()}; {boards} boards: {many.summary()}"
    return [
        Figure.single(
            f"parallel.gate.{boards}_boards.wall",
            many.wall,
            "s",
            baseline_name="the same suite on 1 board (rig gate)",
            baseline_value=one.wall,
            notes=f"target <= {TARGET}x on a {cores}-core machine: {met}; {verdicts}",
        ),
        Figure.single(
            "parallel.gate.cpu_busy",
            many.busy,
            "share of cores",
            baseline_name="the 1-board run",
            baseline_value=one.busy,
            notes=f"CPU {many.cpu:.0f} cpu-s over {many.wall:.0f}s on {cores} cores, against "
            f"{one.cpu:.0f} cpu-s over {one.wall:.0f}s; near 1 means the boards wait on the CPU",
        ),
        Figure.from_samples(
            "parallel.gate.board_suite_time",
            many.suite_times(),
            "s",
            baseline_name="the board alone",
            baseline=one.suite_times(),
            notes=f"each board's pytest session, start to end (run.json); the {boards} sessions "
            f"started within {spread:.1f}s of each other",
        ),
    ]


if __name__ == "__main__":  # python -m benchmarks.bench_parallel: this module alone, with its limit
    from benchmarks import runner

    result = runner.run_module("parallel", limit=LIMIT_S, quick="--quick" in sys.argv)
    print(runner.table({"benchmarks": {"parallel": result}, "total_seconds": result["seconds"]}))
