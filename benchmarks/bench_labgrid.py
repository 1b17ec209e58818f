"""A board on a labgrid place: session set-up and per-test overhead, against a local board.

The lab of the rig's labgrid tests, on loopback: ``labgrid-coordinator``, a virtual board, and
``labgrid-exporter`` sharing its pty as a ``RawSerialPort`` through ser2net; one place matches
it. The project of ``bench_session`` (a first test taking ``board``, then N trivial tests taking
``board``, ``mqtt`` and ``serial_log``) runs in a pytest subprocess on that place, and, taking
turns with it, on the default local virtual board: the baseline, measured in the same run.

- Set-up: from starting pytest to the first test body. On the place it includes reserving it
  through the coordinator, ser2net's RFC2217 open, and the deploy over RFC2217; cold (empty
  flash: a full deploy) and warm (only config.json changes).
- Per-test cycle: the interval between consecutive test bodies (fixture set-up and teardown,
  which on a place includes the soft reset and the console over RFC2217).

labgrid installs ``pyserial-labgrid`` over pyserial, so this module runs in its own environment
(``tox -e bench-lab``, which merges these figures into results.json); elsewhere it is skipped,
saying so. Every part is stopped by PID at the end (``ChildProcess``).
"""

from __future__ import annotations

import importlib.util
import shutil

from benchmarks import stats
from benchmarks.bench_session import intervals, make_project, pytest_run
from benchmarks.runner import BenchContext, Figure, ModuleSkipped

ORDER = 32
BUDGET_S = 120
LIMIT_S = 300.0

PLACE = "bench-place"
EXPORTER = "bench-host"


def run(ctx: BenchContext) -> list[Figure]:
    if importlib.util.find_spec("labgrid") is None:
        raise ModuleSkipped("labgrid is installed in its own environment: run tox -e bench-lab")
    if shutil.which("ser2net") is None:
        raise ModuleSkipped("ser2net is not installed (apt-get install ser2net)")
    # Imported only here: rig.lab loads labgrid's gRPC client.
    from rig.lab.client import create_places
    from rig.lab.testing import Coordinator, Exporter

    coordinator = Coordinator.start(ctx.tmp / "coordinator")
    ctx.on_close(coordinator.stop)
    # No network namespace: the place's board reaches the run's broker on this loopback.
    board = ctx.virtual_board(PLACE, flash_dir=ctx.tmp / "flash-place")
    exporter = Exporter.start(
        coordinator.address,
        EXPORTER,
        {PLACE: {"RawSerialPort": {"port": board.port_url, "speed": 115200}}},
        ctx.tmp / "exporter",
    )
    ctx.on_close(exporter.stop)
    create_places(
        coordinator.address,
        [{"name": PLACE, "matches": [f"{EXPORTER}/{PLACE}/*"], "tags": {"bench": "yes"}}],
        ctx.tmp / "create-places.log",
    )
    inventory = ctx.tmp / "boards.yaml"
    inventory.write_text(
        "defaults:\n"
        "  kind: labgrid\n"
        f"  labgrid: {{coordinator: '{coordinator.address}'}}\n"
        "  network: {broker_host: 127.0.0.1}\n"
        f"boards:\n  - name: {PLACE}\n    labgrid: {{place: {PLACE}}}\n"
    )

    runs = ctx.n(1 if ctx.quick else 3)
    n = 5 if ctx.quick else 20
    marks = ctx.tmp / "marks.txt"
    lab_env = {"GRPC_ENABLE_FORK_SUPPORT": "0"}
    places = {
        "place": (
            make_project(ctx.tmp / "on-place", n, marks),
            [f"--rig-inventory={inventory}", f"--rig-board={PLACE}"],
        ),
        "local": (make_project(ctx.tmp / "local", n, marks), []),
    }
    setup: dict[str, list[float]] = {"place": [], "local": []}
    cold: dict[str, float] = {}
    cycle: dict[str, list[float]] = {"place": [], "local": []}
    # The first run of each deploys to an empty flash; the two take turns so that they share
    # the machine alike.
    for i in range(runs + 1):
        for where, (project, args) in places.items():
            t0, found = pytest_run(ctx, project, ["tests/test_a_rig.py", *args], marks, lab_env)
            first = next(t for name, t in found if name == "first")
            if i == 0:
                cold[where] = first - t0
                continue
            setup[where].append(first - t0)
            cycle[where] += intervals([first] + [t for name, t in found if name == "rig"])
    ctx.log(f"setup {setup}, cold {cold}")

    return [
        Figure.from_samples(
            "labgrid.session.setup_to_first_test",
            setup["place"],
            "s",
            baseline_name="local virtual board",
            baseline=setup["local"],
            notes="reserve through the coordinator, RFC2217 open through ser2net, deploy of "
            "config.json only (tree already on the flash)",
        ),
        Figure.single(
            "labgrid.session.setup_to_first_test.cold_flash",
            cold["place"],
            "s",
            baseline_name="local virtual board, cold flash",
            baseline_value=cold["local"],
            notes="first run: empty flash, so a full deploy over RFC2217",
        ),
        Figure.from_samples(
            "labgrid.session.test_cycle",
            [c * 1000 for c in cycle["place"]],
            "ms",
            baseline_name="local virtual board",
            baseline=[c * 1000 for c in cycle["local"]],
            notes="interval between consecutive test bodies using board+mqtt+serial_log",
        ),
        Figure.single(
            "labgrid.session.per_test_overhead.p50",
            (stats.median(cycle["place"]) - stats.median(cycle["local"])) * 1000,
            "ms",
            samples=len(cycle["place"]),
            notes="what a place adds to each test: its cycle minus the local cycle (medians)",
        ),
    ]
