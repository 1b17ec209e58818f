"""The lab-scale benchmark (benchmarks/bench_lab_scale.py) in quick mode: one board, then two
boards at once, two tests each; it runs and writes its figures. Nothing here judges the speed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import runner
from tests.rig.processes_left import processes_naming

pytestmark = pytest.mark.integration


def test_lab_scale_quick_runs_both_gates_and_writes_its_figures(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    runner.run(["lab_scale"], out=out, quick=True)
    result = json.loads(out.read_text())["benchmarks"]["lab_scale"]
    assert result["error"] is None, result["error"]
    figures = {f["name"]: f for f in result["figures"]}
    wall = figures["lab_scale.gate.2_boards.wall"]
    assert wall["value"] > 0 and wall["baseline_value"] > 0 and wall["ratio"] is not None
    assert "0 failures" in wall["notes"] and "4/4 tests passed on 2/2 boards" in wall["notes"], wall["notes"]
    assert figures["lab_scale.gate.2_boards.failures"]["value"] == 0
    assert figures["lab_scale.gate.2_boards.failures"]["baseline_value"] == 0
    # Each board's whole tree was accounted: CPU and memory, across the two boards and alone.
    for name in ("lab_scale.board.cpu_s", "lab_scale.board.peak_rss", "lab_scale.board.peak_charge"):
        figure = figures[name]
        assert figure["value"] > 0 and figure["baseline_value"] > 0, figure
        assert figure["samples"] == 2 and set(figure["spread"]) == {"p10", "p50", "p90", "max"}, figure
        assert "NOT accounted" not in figure["notes"]
    assert processes_naming("rig-bench-lab_scale-") == {}, "a board or broker outlived the benchmark"
