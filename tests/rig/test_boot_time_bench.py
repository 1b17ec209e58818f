"""The boot benchmark in quick mode: boots of the virtual board measured as the suite measures them,
against a host client's connect on the same broker and clock."""

from __future__ import annotations

import pytest

from benchmarks import runner


@pytest.mark.integration
def test_boot_benchmark_quick_gives_percentiles_against_a_host_connect() -> None:
    result = runner.run_module("boot", quick=True)
    assert result["error"] is None, result["error"]
    figures = {f["name"]: f for f in result["figures"]}
    kind = next(name.split(".")[1] for name in figures if name.endswith("_to_connected.p50"))
    for how in ("power_cycle", "soft_reset"):
        for p in ("p50", "p95"):
            figure = figures[f"boot.{kind}.{how}_to_connected.{p}"]
            assert figure["value"] > 0 and figure["baseline_value"] > 0 and figure["ratio"] > 0, figure
            assert figure["baseline_name"].startswith("host MQTT client connect")
    assert figures["boot.unix_port_start.p50"]["value"] > 0
