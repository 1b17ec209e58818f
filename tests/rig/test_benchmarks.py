"""The benchmark runner: a tiny benchmark through it, the shape of results.json, the statistics,
and one real benchmark module in quick mode. Well under 20 s."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks import runner, stats
from tests.rig.processes_left import processes_naming

TINY = """
import time
from benchmarks.runner import Figure

CLOSED = []

def run(ctx):
    assert ctx.tmp.is_dir() and (ctx.root / "firmware").is_dir()
    ctx.on_close(lambda: CLOSED.append(ctx.name))
    fast, slow = [], []
    for _ in range(ctx.n(5)):
        t0 = time.perf_counter(); sum(range(1000)); fast.append(time.perf_counter() - t0)
        t0 = time.perf_counter(); sum(range(10000)); slow.append(time.perf_counter() - t0)
    return [Figure.from_samples("tiny.sum", fast, "s", baseline_name="sum x10", baseline=slow, notes="n")]
"""

BROKEN = "def run(ctx):\n    raise ValueError('broken on purpose')\n"
HANGS = "import time\n\ndef run(ctx):\n    time.sleep(30)\n"
SKIPS = (
    "from benchmarks.runner import ModuleSkipped\n\n"
    "def run(ctx):\n    raise ModuleSkipped('frobnicator is not installed')\n"
)


@pytest.fixture
def fake_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    package = tmp_path / "fakebench"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "bench_tiny.py").write_text(TINY)
    (package / "bench_broken.py").write_text(BROKEN)
    (package / "bench_hangs.py").write_text(HANGS)
    (package / "bench_skips.py").write_text(SKIPS)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "fakebench"
    for name in [m for m in sys.modules if m.startswith("fakebench")]:
        del sys.modules[name]


FIGURE_KEYS = {
    "name",
    "value",
    "unit",
    "baseline_name",
    "baseline_value",
    "ratio",
    "samples",
    "spread",
    "notes",
}


def test_runner_writes_results_json_of_every_figure(fake_package: str, tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    results = runner.run(["tiny", "broken"], out=out, samples=3, package=fake_package)
    on_disk = json.loads(out.read_text())
    assert on_disk == json.loads(json.dumps(results))
    assert set(on_disk) == {"started", "host", "total_seconds", "benchmarks"}
    tiny = on_disk["benchmarks"]["tiny"]
    assert tiny["error"] is None and tiny["seconds"] >= 0
    (figure,) = tiny["figures"]
    assert set(figure) == FIGURE_KEYS
    assert figure["samples"] == 3 and figure["unit"] == "s" and figure["baseline_name"] == "sum x10"
    assert figure["ratio"] == pytest.approx(figure["value"] / figure["baseline_value"])
    assert set(figure["spread"]) == {"p10", "p90"}
    assert sys.modules["fakebench.bench_tiny"].CLOSED == ["tiny"]  # cleanups ran
    # A module that raises is recorded and the run goes on.
    assert on_disk["benchmarks"]["broken"] == {
        "seconds": pytest.approx(on_disk["benchmarks"]["broken"]["seconds"]),
        "error": "ValueError: broken on purpose",
        "skipped": None,
        "figures": [],
    }
    text = runner.table(results)
    assert "tiny.sum" in text and "broken: ValueError: broken on purpose" in text


def test_a_module_that_cannot_measure_here_is_skipped_not_failed(fake_package: str) -> None:
    results = runner.run(["skips", "tiny"], out=None, samples=1, package=fake_package)
    skipped = results["benchmarks"]["skips"]
    assert (skipped["skipped"], skipped["error"], skipped["figures"]) == (
        "frobnicator is not installed",
        None,
        [],
    )
    assert results["benchmarks"]["tiny"]["skipped"] is None
    assert "skipped:\n  skips: frobnicator is not installed" in runner.table(results)


def test_a_module_that_hangs_is_stopped_at_its_limit(fake_package: str) -> None:
    started = time.monotonic()
    result = runner.run_module("hangs", package=fake_package, limit=1)
    assert result["error"] == "ModuleTimeout: the benchmark module ran past its time limit"
    assert time.monotonic() - started < 5


def test_context_stops_what_it_started_and_removes_its_temp_dir() -> None:
    ctx = runner.BenchContext("ctxtest")
    proc = ctx.spawn([sys.executable, "-c", "import time; time.sleep(60)"])
    tmp = ctx.tmp
    assert ctx.close() == []
    assert proc.poll() is not None
    assert not tmp.exists()


def test_stats() -> None:
    xs = [5.0, 1.0, 4.0, 2.0, 3.0]
    assert stats.median(xs) == 3.0
    assert stats.percentile(xs, 0) == 1.0 and stats.percentile(xs, 100) == 5.0
    assert stats.percentile(xs, 10) == pytest.approx(1.4)
    assert stats.spread([1.0]) == {}
    assert stats.ratio(1.0, 0.0) is None and stats.ratio(1.0, 4.0) == 0.25
    figure = runner.Figure.from_samples("x", [2.0, 4.0], "s", baseline=8.0)
    assert (figure.value, figure.baseline_value, figure.ratio, figure.samples) == (3.0, 8.0, 0.375, 2)


def test_discover_lists_the_modules_in_order() -> None:
    names = runner.discover()
    assert {"deploy", "serial", "session", "memory_host"} <= set(names)
    assert names.index("deploy") < names.index("serial")


def test_serial_benchmark_quick_verifies_every_byte() -> None:
    started = time.monotonic()
    result = runner.run_module("serial", quick=True)
    assert result["error"] is None, result["error"]
    figures = {f["name"]: f for f in result["figures"]}
    assert figures["serial.throughput"]["value"] > 0 and figures["serial.throughput"]["baseline_value"] > 0
    assert figures["serial.idle_cpu"]["value"] < 0.05  # the reader blocks
    assert time.monotonic() - started < 15


def test_rfc2217_benchmark_quick_verifies_every_byte_through_ser2net() -> None:
    started = time.monotonic()
    result = runner.run_module("rfc2217", quick=True)
    if result["skipped"]:
        pytest.skip(result["skipped"])
    assert result["error"] is None, result["error"]
    figures = {f["name"]: f for f in result["figures"]}
    for name in ("rfc2217.throughput", "rfc2217.deploy.cold", "rfc2217.deploy.nochange"):
        assert figures[name]["value"] > 0 and figures[name]["baseline_value"] > 0, name
    assert processes_naming("rig-bench-rfc2217-") == {}, "ser2net or a board outlived the module"
    assert time.monotonic() - started < 30


def test_peer_benchmark_quick_compares_with_pytest_embedded() -> None:
    """Skipped unless pytest-embedded-serial is installed (the tox bench environment)."""
    result = runner.run_module("peer", quick=True)
    if result["skipped"]:
        pytest.skip(result["skipped"])
    assert result["error"] is None, result["error"]
    figures = {f["name"]: f for f in result["figures"]}
    assert figures["peer.expect_latency"]["baseline_name"].startswith("pytest-embedded")
    assert figures["peer.throughput"]["value"] > 0 and figures["peer.throughput"]["baseline_value"] > 0


def test_reference_batches_fit_the_boards_messages_per_turn() -> None:
    """The reference round trips inject a batch per boot that, with "hello", one turn reads whole;
    the limit is the board's config, not a copy of it."""
    from benchmarks import bench_echo
    from rig.firmware_config import own_contract

    assert bench_echo.per_boot(own_contract().app["max_messages_per_turn"]) == bench_echo.REFERENCE_PER_BOOT
    assert bench_echo.per_boot(4) == 3
    assert bench_echo.per_boot(1) == 1
