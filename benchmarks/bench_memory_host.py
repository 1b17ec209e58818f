"""Host memory: the rig's peak RSS for one pytest session of the HIL suite.

Each run is a pytest subprocess reaped with ``os.wait4`` by a small launcher process, so its
rusage is that child's alone (with the children it waited for itself): runs do not mix as the
cumulative ``RUSAGE_CHILDREN`` would, nor inherit the runner's own high-water mark.
``ru_maxrss`` is the peak of the largest single process in that tree: the pytest process
itself, in practice. The figure's baseline is a pytest subprocess with the rig
plugin loaded running one trivial test that uses no rig fixture (so no broker, no board).

A second figure samples, every 50 ms, the summed RSS of the whole process tree (pytest, the
virtual board's supervisor and MicroPython, the broker): the session's footprint on the machine.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from benchmarks.runner import BenchContext, Figure

ORDER = 40
BUDGET_S = 45
# Two runs of the whole HIL suite (about a minute each): more than the runner's default bound.
LIMIT_S = 300

PAGE = os.sysconf("SC_PAGE_SIZE")


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def tree_rss(pid: int) -> int:
    """Summed RSS (bytes) of ``pid`` and all its descendants."""
    total = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            total += int(Path(f"/proc/{p}/statm").read_text().split()[1]) * PAGE
        except (OSError, IndexError, ValueError):
            continue
        todo += _children(p)
    return total


# Reaps the measured command with wait4 and reports its rusage. The command is started from this
# small process, not from the runner: on Linux a child's ru_maxrss starts from its parent's RSS
# high-water mark at fork (it survives exec), and the runner has grown large by now.
LAUNCHER = """
import os, subprocess, sys
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print("PID", p.pid, flush=True)
_, status, usage = os.wait4(p.pid, 0)
print("DONE", usage.ru_maxrss, os.waitstatus_to_exitcode(status), flush=True)
"""


def measured_run(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, float, int, float]:
    """(ru_maxrss bytes, peak sampled tree RSS bytes, exit code, seconds) of one subprocess."""
    started = time.monotonic()
    launcher = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, *argv], cwd=cwd, env=env, stdout=subprocess.PIPE, text=True
    )
    assert launcher.stdout is not None
    peak = 0
    done = threading.Event()
    pid: int | None = None
    try:
        pid = int(launcher.stdout.readline().split()[1])

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, tree_rss(pid))
                done.wait(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            _, maxrss_kib, code = launcher.stdout.readline().split()
        finally:
            done.set()
            sampler.join()
        launcher.wait(10)
    except BaseException:
        if pid is not None:  # pytest stops its board and broker on SIGTERM
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        launcher.kill()
        launcher.wait()
        raise
    return int(maxrss_kib) * 1024, float(peak), int(code), time.monotonic() - started


def run(ctx: BenchContext) -> list[Figure]:
    n = ctx.n(1 if ctx.quick else 2)
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(ctx.root), os.environ.get("PYTHONPATH")) if p)
    )
    base_project = ctx.tmp / "baseline"
    (base_project / "tests").mkdir(parents=True)
    (base_project / "conftest.py").write_text('pytest_plugins = ["rig.plugin"]\n')
    (base_project / "tests" / "test_trivial.py").write_text("def test_trivial():\n    assert True\n")
    common = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]

    hil_max: list[float] = []
    hil_tree: list[float] = []
    base_max: list[float] = []
    base_tree: list[float] = []
    notes = []
    for i in range(n):
        artifacts = ctx.tmp / f"artifacts-{i}"
        maxrss, tree, code, secs = measured_run(
            [*common, "tests/hil", f"--rig-artifacts={artifacts}"], ctx.root, env
        )
        hil_max.append(maxrss / 2**20)
        hil_tree.append(tree / 2**20)
        if code != 0:
            notes.append(f"HIL run {i} exited {code} (failures still count: the session ran)")
        ctx.log(
            f"HIL run {i}: exit {code}, {secs:.1f}s, "
            f"maxrss {maxrss / 2**20:.1f} MiB, tree {tree / 2**20:.1f} MiB"
        )
        maxrss, tree, code, _ = measured_run(
            [*common, "tests", f"--rig-artifacts={ctx.tmp / 'artifacts-base'}"], base_project, env
        )
        if code != 0:
            raise RuntimeError(f"the baseline pytest run failed with exit code {code}")
        base_max.append(maxrss / 2**20)
        base_tree.append(tree / 2**20)
    return [
        Figure.from_samples(
            "host_memory.pytest_peak_rss",
            hil_max,
            "MiB",
            baseline_name="pytest + plugin, one trivial test",
            baseline=base_max,
            notes="; ".join(["ru_maxrss of the pytest subprocess running tests/hil (wait4)", *notes]),
        ),
        Figure.from_samples(
            "host_memory.session_tree_rss",
            hil_tree,
            "MiB",
            baseline_name="pytest + plugin, one trivial test",
            baseline=base_tree,
            notes="peak of the summed RSS of pytest + virtual board + broker, sampled every 50 ms",
        ),
    ]
