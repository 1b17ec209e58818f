"""The results store on SQLite (rig.history): migrations, writing, reading, importing old run
folders, the pytest hook and ``rig history``. No process is started: the fast tier."""

from __future__ import annotations

import importlib.util
import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from rig.cli import main
from rig.errors import ConfigError
from rig.evidence import run_record
from rig.evidence.run_record import BoardInfo, FirmwareInfo, RunRecord
from rig.history import writer
from rig.history.folder import FIGURE_UNITS, RUN_NODEID, read_folder, run_folders
from rig.history.models import Base, Figure, Result, Run
from rig.history.records import Failure, ResultIn, RunIn
from rig.history.store import VERSION_TABLE, HistoryError, Store, default_url, open_store

pytest_plugins = ["pytester"]


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'lab' / 'rig-history.sqlite'}"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(sqlite_url(tmp_path)) as opened:
        yield opened


def run_folder(
    where: Path,
    board: str = "virtual",
    started: float = 1_800_000_000.0,
    tests: list[run_record.TestRecord] | None = None,
) -> Path:
    """A run folder as a rig from before the store left it: run.json only."""
    where.mkdir(parents=True, exist_ok=True)
    record = RunRecord(
        rig_version="0.1.0",
        started=started,
        finished=started + 30,
        board=BoardInfo(name=board, kind="virtual"),
        firmware=FirmwareInfo(tree_hash="abc123"),
        tests=tests
        if tests is not None
        else [
            run_record.TestRecord(
                "tests/hil/test_echo_loop.py::test_echo",
                "test_echo",
                "passed",
                duration=1.5,
                started=started + 1,
                properties={"board": board, "echo_gap_ratio": "1.020", "boot_to_connected_s": "0.4120"},
            ),
            run_record.TestRecord(
                "tests/hil/test_faults.py::test_wifi_drop",
                "test_wifi_drop",
                "failed",
                duration=4.0,
                message="AssertionError: no reconnect within 10 s",
                properties={
                    "fault.wifi.detect_s": "0.812",
                    "fault.wifi.resume_s": "2.250",
                    "fault.wifi.will": "true",
                },
            ),
            run_record.TestRecord(
                "tests/hil/test_soak.py::test_heap",
                "test_heap",
                "error",
                infrastructure=True,
                message="BoardUnreachable: /dev/ttyACM0 vanished",
                properties={"heap_bytes_per_message": "0.25", "runtime": "MicroPython 1.29"},
            ),
        ],
    )
    record.save(where / "run.json")
    return where


def test_the_migrations_make_exactly_the_models_schema(store: Store) -> None:
    with store.engine.connect() as connection:
        differences = compare_metadata(
            MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE}), Base.metadata
        )
    assert differences == []


def test_a_run_is_stored_whole_and_read_back_newest_first(store: Store) -> None:
    for n, outcome in enumerate(("passed", "failed", "passed")):
        failure: Failure = "firmware" if outcome == "failed" else "none"
        result = ResultIn("virtual", "tests/hil/test_x.py::test_y", outcome, failure, duration=n)
        assert store.write(RunIn(f"run-{n}", "pytest", 1_800_000_000.0 + n * 86400, results=(result,)))
    rows = store.outcomes(nodeid="test_x.py::test_y", last=2)
    assert [(r.outcome, r.failure, r.duration) for r in rows] == [
        ("passed", "none", 2.0),
        ("failed", "firmware", 1.0),
    ]
    assert rows[0].started.tzinfo is not None and rows[0].started.timestamp() == 1_800_000_000.0 + 2 * 86400


def test_writing_the_same_run_twice_adds_nothing(store: Store) -> None:
    run = RunIn("the-key", "gate", 1_800_000_000.0, results=(ResultIn("a", "t::t", "passed", "none"),))
    assert store.write(run) is True
    assert store.write(run) is False
    assert (store.count(Run), store.count(Result)) == (1, 1)


def test_figures_are_the_properties_named_with_a_unit(tmp_path: Path) -> None:
    run = read_folder(run_folder(tmp_path / "old"))
    found = {(f.name, f.value, f.unit) for r in run.results for f in r.figures}
    assert found == {
        ("echo_gap_ratio", 1.02, "ratio"),
        ("boot_to_connected_s", 0.412, "s"),
        ("fault.wifi.detect_s", 0.812, "s"),
        ("fault.wifi.resume_s", 2.25, "s"),
        ("heap_bytes_per_message", 0.25, "bytes/message"),
    }
    assert [r.failure for r in run.results] == ["none", "firmware", "infrastructure"]
    assert FIGURE_UNITS[0][0] == "_bytes_per_message"  # the longest suffix is tried first


def test_a_gate_folder_is_one_run_and_a_killed_attempt_is_an_infrastructure_result(tmp_path: Path) -> None:
    out = tmp_path / "gate-out"
    out.mkdir()
    (out / ".rig-gate").write_text("written by rig gate\n")
    run_folder(out / "virtual-1", board="virtual-1")
    run_folder(out / "virtual-2", board="virtual-2", started=1_800_000_005.0, tests=[])
    (out / "virtual-2-retry1").mkdir()  # killed before it wrote run.json
    run = read_folder(out)
    assert run.kind == "gate"
    assert {r.board for r in run.results} == {"virtual-1", "virtual-2"}
    lost = [r for r in run.results if r.nodeid == RUN_NODEID]
    assert [(r.board, r.outcome, r.failure) for r in lost] == [("virtual-2", "error", "infrastructure")]
    assert "virtual-2-retry1" in lost[0].message
    assert run_folders([tmp_path]) == [out]  # its board folders are not runs of their own


def test_what_the_gate_said_of_a_failed_board_run_is_an_infrastructure_result(tmp_path: Path) -> None:
    """The gate's merged junit.xml names why a board's final run failed as a whole (rig.gate
    board-run): that run's result, whether or not the run left run.json."""
    out = tmp_path / "gate-out"
    out.mkdir()
    (out / ".rig-gate").write_text("written by rig gate\n")
    run_folder(out / "virtual-1", board="virtual-1", tests=[])
    run_folder(out / "virtual-2", board="virtual-2", tests=[])
    (out / "virtual-2-retry1").mkdir()
    (out / "junit.xml").write_text(
        '<testsuites><testsuite name="virtual-1"><testcase classname="rig.gate" name="board-run">'
        '<error message="the run did not finish (run.json has no end time)"/></testcase></testsuite>'
        '<testsuite name="virtual-2"><testcase classname="rig.gate" name="board-run">'
        '<error message="timed out after 60s, killed"/></testcase></testsuite></testsuites>'
    )
    lost = sorted((r.board, r.failure, r.message) for r in read_folder(out).results if r.nodeid == RUN_NODEID)
    assert lost == [
        ("virtual-1", "infrastructure", "virtual-1: the run did not finish (run.json has no end time)"),
        ("virtual-2", "infrastructure", "virtual-2-retry1: timed out after 60s, killed"),
    ]


def test_rig_history_import_twice_stores_each_run_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = tmp_path / "nights"
    run_folder(old / "monday", started=1_800_000_000.0)
    run_folder(old / "tuesday", started=1_800_086_400.0)
    url = sqlite_url(tmp_path)
    assert main(["history", "--history", url, "import", str(old)]) == 0
    assert "2 run(s) imported" in capsys.readouterr().out
    assert main(["history", "--history", url, "import", str(old / "monday"), str(old / "tuesday")]) == 0
    assert "0 run(s) imported" in capsys.readouterr().out
    with open_store(url) as store:
        assert (store.count(Run), store.count(Result), store.count(Figure)) == (2, 6, 10)

    assert main(["history", "--history", url, "test_wifi_drop"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all("FAILED (firmware)" in line for line in lines)
    assert "no reconnect within 10 s" in lines[0] and lines[0].startswith("2027-01-16")
    assert main(["history", "--history", url, "--board", "virtual", "--last", "3"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3
    assert main(["history", "--history", url, "--board", "nosuch"]) == 0
    assert "no results" in capsys.readouterr().out


def test_rig_history_without_a_test_or_with_a_folder_without_runs_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = sqlite_url(tmp_path)
    assert main(["history", "--history", url]) == 2
    assert main(["history", "--history", url, "import", str(tmp_path)]) == 2
    assert "holds no run.json" in capsys.readouterr().err


def test_the_default_store_is_beside_the_inventory(tmp_path: Path) -> None:
    assert default_url(tmp_path / "boards.yaml") == f"sqlite:///{tmp_path / 'rig-history.sqlite'}"


def test_a_store_migrated_by_a_newer_rig_is_refused(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    open_store(url).close()
    with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
        db.execute("UPDATE rig_history_version SET version_num = '0099_from_the_future'")
    with pytest.raises(HistoryError, match=r"migration 0099_from_the_future, newer than this rig knows"):
        open_store(url)


def test_an_unknown_url_is_a_clear_error() -> None:
    with pytest.raises(HistoryError, match=r"nosuchdb://x: not a database URL"):
        open_store("nosuchdb://x")


def test_two_writers_at_once_lose_nothing(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    errors: list[BaseException] = []

    def writer(name: str) -> None:
        try:
            with open_store(url) as store:
                for n in range(25):
                    result = ResultIn(name, "t.py::t", "passed", "none")
                    store.write(RunIn(f"{name}-{n}", "gate", 1_800_000_000.0 + n, results=(result,)))
        except BaseException as e:  # judged in the main thread
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with open_store(url) as store:
        assert sorted(store.run_keys()) == sorted(f"{w}-{n}" for w in "ab" for n in range(25))


def test_a_pytest_run_given_rig_history_writes_its_run(inner: pytest.Pytester, tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    inner.makepyfile(test_two="def test_ok(): pass\ndef test_bad(): assert False, 'on purpose'\n")
    artifacts = inner.path / "artifacts"
    result = inner.runpytest_inprocess(f"--rig-artifacts={artifacts}", f"--rig-history={url}")
    result.assert_outcomes(passed=1, failed=1)
    with open_store(url) as store:
        rows = store.outcomes(nodeid="test_two.py")
    assert sorted((r.nodeid.split("::")[1], r.outcome, r.failure) for r in rows) == [
        ("test_bad", "failed", "firmware"),
        ("test_ok", "passed", "none"),
    ]
    assert json.loads((artifacts / "run.json").read_text())["finished"] is not None


def test_a_pytest_run_with_a_bad_history_url_stops_before_it_runs(inner: pytest.Pytester) -> None:
    inner.makepyfile(test_one="def test_ok(): pass\n")
    result = inner.runpytest_inprocess("--rig-history=nosuchdb://x")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*nosuchdb://x: not a database URL*"])


def test_without_the_history_extra_a_gate_runs_and_says_its_results_were_not_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "sqlalchemy" else real_find_spec(name, *a),
    )
    store = writer.open_history(None, tmp_path / "boards.yaml")
    assert store is None
    assert "pip install 'micropython-mqtt-rig[history]'" in writer.record_folder(store, tmp_path, tmp_path)
    with pytest.raises(ConfigError, match=r"the results store needs sqlalchemy: pip install"):
        writer.open_history(sqlite_url(tmp_path), tmp_path / "boards.yaml")
    assert not (tmp_path / "rig-history.sqlite").exists()
