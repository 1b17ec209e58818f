"""``rig trends``'s data and page without a browser (fast tier): a store of five nights written
through ``Store.write`` (tests/rig/trends_runs.py); the Chromium checks are test_trends_browser.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rig.cli import main
from rig.evidence import run_record
from rig.evidence.junit_properties import FLAKY as FLAKY_PROPERTY
from rig.evidence.run_record import BoardInfo, FirmwareInfo, RunRecord
from rig.history.folder import read_folder
from rig.history.store import Store, open_store
from rig.history.trends import SUITE_DURATION, Trends, figure_moved, trends
from rig.report.html import render_report
from rig.report.page import TRENDS_PAGE
from rig.report.trends_page import render_trends
from tests.rig.trends_runs import BREAK_MESSAGE, BREAKS, HOSTILE, MENDS, NIGHTS, STEADY, WOBBLY, write_nights


def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'rig-history.sqlite'}"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(url(tmp_path)) as opened:
        write_nights(opened)
        yield opened


@pytest.fixture
def data(store: Store) -> Trends:
    return trends(store, NIGHTS)


def test_the_grid_has_each_board_and_test_with_one_outcome_per_night(data: Trends) -> None:
    rows = {(row.board, row.nodeid): [c.outcome if c else None for c in row.cells] for row in data.rows}
    assert rows[("virtual", BREAKS)] == ["passed"] * 4 + ["failed"]
    assert rows[("virtual", MENDS)] == ["failed"] * 4 + ["passed"]
    assert rows[("virtual", WOBBLY)] == ["passed"] * 4 + ["flaky"]
    assert rows[("usb-1", STEADY)] == ["passed", "passed", "error", "passed", "passed"]
    assert [run.key for run in data.runs] == [f"gate:night-{n}" for n in range(NIGHTS)]


def test_what_changed_names_new_failures_fixed_flaky_and_the_moved_figure(data: Trends) -> None:
    changes = {(c.kind, c.subject) for c in data.changes}
    assert changes == {
        ("new failure", f"virtual: {BREAKS}"),
        ("new failure", f"virtual: {HOSTILE}"),
        ("fixed", f"virtual: {MENDS}"),
        ("newly flaky", f"virtual: {WOBBLY}"),
        ("figure moved", "virtual: boot_to_connected_s"),
    }
    (broke,) = [c for c in data.changes if c.subject == f"virtual: {BREAKS}"]
    assert BREAK_MESSAGE in broke.detail


def test_figures_are_series_across_nights_with_the_suite_duration(data: Trends) -> None:
    series = {(s.board, s.name): s.values for s in data.series}
    assert series[("", SUITE_DURATION)] == (600.0, 610.0, 590.0, 605.0, 602.0)
    assert series[("virtual", "boot_to_connected_s")] == (1.0, 1.1, 0.9, 1.0, 3.0)


def test_nights_limits_the_runs_to_the_newest(store: Store) -> None:
    data = trends(store, 2)
    assert [run.key for run in data.runs] == ["gate:night-3", "gate:night-4"]
    # Two nights are too few to judge a figure's noise.
    assert not [c for c in data.changes if c.kind == "figure moved"]


def test_a_figure_moves_only_past_its_noise() -> None:
    assert figure_moved((1.0, 1.1, 0.9, 1.0, 1.14)) is None  # MAD 0.05: band ±0.15
    assert figure_moved((1.0, 1.1, 0.9, 1.0, 3.0)) is not None
    assert figure_moved((1.0, 1.0, 1.0, 1.01)) is None  # within the floor of a flat figure
    assert figure_moved((1.0, 1.1, 3.0)) is None  # too few previous runs
    assert figure_moved((1.0, 1.1, 0.9, 1.0, None)) is None


def test_html_in_a_test_name_is_escaped(data: Trends) -> None:
    html = render_trends(data, 0.0)
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt;" in html


def test_rig_trends_writes_the_page(store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "page" / "trends.html"
    out.parent.mkdir()
    assert main(["trends", "--history", url(tmp_path), "--out", str(out), "--nights", "5"]) == 0
    assert "5 run(s), 5 change(s)" in capsys.readouterr().out
    assert "What changed since the last run" in out.read_text(encoding="utf-8")


def test_rig_trends_refuses_zero_nights(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["trends", "--history", url(tmp_path), "--nights", "0"]) == 2
    assert "--nights" in capsys.readouterr().err


def test_the_report_links_the_trends_page_beside_it(tmp_path: Path) -> None:
    assert 'id="trends-link"' not in render_report([], tmp_path, "night", 0.0)
    (tmp_path / TRENDS_PAGE).write_text("<!DOCTYPE html>", encoding="utf-8")
    assert f'<a id="trends-link" href="{TRENDS_PAGE}">' in render_report([], tmp_path, "night", 0.0)


def rerun_folder(where: Path, started: float, flaky: bool) -> Path:
    """A pytest run folder whose test passed, after a failed first attempt when ``flaky``."""
    where.mkdir(parents=True)
    properties = {FLAKY_PROPERTY: "failed, then passed when run again"} if flaky else {}
    RunRecord(
        rig_version="0.1.0",
        started=started,
        finished=started + 30,
        board=BoardInfo(name="virtual", kind="virtual"),
        firmware=FirmwareInfo(tree_hash="abc123"),
        tests=[run_record.TestRecord(WOBBLY, "test_wobbly", "passed", properties=properties)],
    ).save(where / "run.json")
    return where


def test_a_rerun_that_passed_in_one_pytest_run_is_stored_and_shown_flaky(tmp_path: Path) -> None:
    with open_store(url(tmp_path)) as opened:
        for n, flaky in enumerate((False, True)):
            assert opened.write(read_folder(rerun_folder(tmp_path / f"run-{n}", 1_800_000_000.0 + n, flaky)))
        data = trends(opened, 5)
    (row,) = data.rows
    assert [c.outcome if c else None for c in row.cells] == ["passed", "flaky"]
    assert [(c.kind, c.subject) for c in data.changes] == [("newly flaky", f"virtual: {WOBBLY}")]
