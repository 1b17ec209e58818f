"""Session overhead: what the rig's pytest plugin costs before and between test bodies.

Each run is ``python -m pytest`` in a subprocess on a generated project (a one-line conftest
loading ``rig.plugin``, the default virtual board and embedded broker, the repo's firmware, the
warm dependency cache):

- ``test_a_rig.py``: ``test_000_first(board)``, then N trivial tests taking ``board``, ``mqtt``
  and ``serial_log``;
- ``test_b_plain.py``: N+1 trivial tests taking no fixture.

Every test body appends ``time.time()`` to a file. Session set-up is the first rig test body's
time minus the time just before the subprocess was started; its baseline is the same measure
for a run of ``test_b_plain.py`` alone (Python + pytest + the plugin loaded, no board, no
broker). Per-test cycle is the interval between consecutive test bodies of one file (fixture
set-up + teardown + pytest's own bookkeeping); its baseline is the same interval for the plain
tests of the same run. Reported, never asserted.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import stats
from benchmarks.runner import BenchContext, Figure

ORDER = 30
BUDGET_S = 40

TEST_RIG = """\
import time

OUT = {out!r}


def _mark(name):
    with open(OUT, "a") as f:
        f.write(f"{{name}} {{time.time()!r}}\\n")


def test_000_first(board):
    _mark("first")
{tests}
"""

TEST_PLAIN = """\
import time

OUT = {out!r}


def _mark(name):
    with open(OUT, "a") as f:
        f.write(f"{{name}} {{time.time()!r}}\\n")


def test_000_first():
    _mark("plainfirst")
{tests}
"""


def make_project(where: Path, n: int, marks: Path) -> Path:
    tests = where / "tests"
    tests.mkdir(parents=True, exist_ok=True)
    (where / "conftest.py").write_text('pytest_plugins = ["rig.plugin"]\n')
    rig_tests = "".join(
        f"\n\ndef test_{i:03d}_rig(board, mqtt, serial_log):\n    _mark('rig')\n" for i in range(1, n + 1)
    )
    plain_tests = "".join(f"\n\ndef test_{i:03d}_plain():\n    _mark('plain')\n" for i in range(1, n + 1))
    (tests / "test_a_rig.py").write_text(TEST_RIG.format(out=str(marks), tests=rig_tests))
    (tests / "test_b_plain.py").write_text(TEST_PLAIN.format(out=str(marks), tests=plain_tests))
    return where


def pytest_run(
    ctx: BenchContext,
    project: Path,
    args: list[str],
    marks: Path,
    extra_env: dict[str, str] | None = None,
) -> tuple[float, list[tuple[str, float]]]:
    """Run pytest; return the time just before it started and the marks its tests wrote."""
    marks.unlink(missing_ok=True)
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(p for p in (str(ctx.root), os.environ.get("PYTHONPATH")) if p),
        **(extra_env or {}),
    )
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        f"--rig-firmware={ctx.root / 'firmware'}",
        f"--rig-artifacts={project / 'artifacts'}",
        *args,
    ]
    t0 = time.time()
    proc = subprocess.run(argv, cwd=project, env=env, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(
            f"pytest failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}"
        )
    found = []
    for line in marks.read_text().splitlines():
        name, t = line.split()
        found.append((name, float(t)))
    return t0, found


def intervals(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


def run(ctx: BenchContext) -> list[Figure]:
    runs = ctx.n(1 if ctx.quick else 3)
    n = 5 if ctx.quick else 30
    project = make_project(ctx.tmp / "project", n, ctx.tmp / "marks.txt")
    marks = ctx.tmp / "marks.txt"

    cold_setup: float | None = None
    setup: list[float] = []
    base_setup: list[float] = []
    rig_cycle: list[float] = []
    plain_cycle: list[float] = []
    # The first run deploys to an empty flash (artifacts/session's, rig.board.virtual_flash); later runs
    # find the tree there and rewrite only config.json and the manifest, as on a dev machine.
    for i in range(runs + 1):
        t0, found = pytest_run(ctx, project, ["tests"], marks)
        first = next(t for name, t in found if name == "first")
        if i == 0:
            cold_setup = first - t0
        else:
            setup.append(first - t0)
            rig_cycle += intervals([first] + [t for name, t in found if name == "rig"])
            plain_times = [t for name, t in found if name in ("plainfirst", "plain")]
            plain_cycle += intervals(plain_times)
        if i < runs:
            t0, found = pytest_run(ctx, project, ["tests/test_b_plain.py"], marks)
            base_setup.append(next(t for name, t in found if name == "plainfirst") - t0)
    ctx.log(f"setup {setup} (cold {cold_setup}), baseline {base_setup}")

    overhead = [c - stats.median(plain_cycle) for c in rig_cycle]
    p50, p90 = stats.percentile(overhead, 50), stats.percentile(overhead, 90)
    setup_med = stats.median(setup)
    return [
        Figure.from_samples(
            "session.setup_to_first_test",
            setup,
            "s",
            baseline_name="pytest + plugin, no rig fixtures",
            baseline=base_setup,
            notes=f"warm dependency cache, tree already on the flash; target < 2 s: "
            f"{'met' if setup_med < 2 else 'NOT met'}",
        ),
        Figure.single(
            "session.setup_to_first_test.cold_flash",
            cold_setup or 0.0,
            "s",
            baseline_name="pytest + plugin, no rig fixtures",
            baseline_value=stats.median(base_setup),
            notes="first run: empty flash, so a full deploy",
        ),
        Figure.from_samples(
            "session.test_cycle",
            [c * 1000 for c in rig_cycle],
            "ms",
            baseline_name="trivial test, no fixtures",
            baseline=[c * 1000 for c in plain_cycle],
            notes="interval between consecutive test bodies using board+mqtt+serial_log",
        ),
        Figure.single(
            "session.per_test_overhead.p50",
            p50 * 1000,
            "ms",
            samples=len(overhead),
            spread={"p10": stats.percentile(overhead, 10) * 1000, "p90": p90 * 1000},
            notes=f"test cycle minus the plain median; target < 50 ms: {'met' if p50 < 0.05 else 'NOT met'}",
        ),
        Figure.single(
            "session.per_test_overhead.p90",
            p90 * 1000,
            "ms",
            samples=len(overhead),
            notes=f"target < 50 ms: {'met' if p90 < 0.05 else 'NOT met'}",
        ),
    ]
