"""The one reader of run folders (``rig.evidence.run_folder``): what the report and the replay
both read, and bad input named by file and key."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from rig.bench_page.replay import ReplaySource
from rig.evidence.run_folder import BadRunRecord, NotARunFolder, load_record, open_run, read_run
from rig.report.load import load_run
from tests.rig.bench_browser import ONE, TWO, write_run


def write_json(path: Path, doc: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc) if not isinstance(doc, str) else doc, encoding="utf-8")
    return path


RUN = {"rig_version": "0.1.0", "started": 1.0, "tests": []}
TEST = {"nodeid": "t.py::a", "name": "a", "outcome": "passed", "artifacts": "a"}


@pytest.mark.parametrize(
    ("doc", "key", "words"),
    [
        ('{"rig_version": "0.1.0", "started": 1', "", "not JSON: Expecting"),
        ([1, 2], "", "expected a JSON object, got list"),
        ({"rig_version": "0.1.0", "tests": []}, "", "missing key(s) started"),
        ({**RUN, "tests": [{**TEST, "outcome": 3}]}, "tests[0].outcome", "expected str, got 3"),
        ({**RUN, "tests": [{"name": "a", "outcome": "passed"}]}, "tests[0]", "missing key(s) nodeid"),
        ({**RUN, "tests": {"a": 1}}, "tests", "expected a list, got dict"),
    ],
    ids=["cut", "list", "no-start", "outcome-type", "no-nodeid", "tests-object"],
)
def test_a_bad_run_json_is_named_by_file_and_key(tmp_path: Path, doc: Any, key: str, words: str) -> None:
    path = write_json(tmp_path / "run" / "run.json", doc)
    _, (bad,) = load_record(path)
    assert isinstance(bad, BadRunRecord) and (bad.path, bad.key) == (path, key)
    assert str(bad).startswith(f"{path}: {key + ': ' if key else ''}") and words in str(bad), bad
    # Read as a folder: the same error, kept as a problem; nothing raises.
    assert [str(p) for p in read_run(tmp_path / "run").problems] == [str(bad)]
    assert load_run(tmp_path / "run").problem == str(bad)


def test_a_test_that_cannot_be_read_is_said_and_the_others_kept(tmp_path: Path) -> None:
    tests = [{**TEST, "nodeid": "t.py::x", "outcome": None}, {**TEST, "nodeid": "t.py::b"}]
    write_json(tmp_path / "run.json", {**RUN, "tests": tests})
    run = load_run(tmp_path)
    assert [t.record.nodeid for t in run.tests] == ["t.py::b"]
    assert run.problem == f"{tmp_path / 'run.json'}: tests[0].outcome: expected str, got None"


def test_a_newer_rigs_keys_are_skipped(tmp_path: Path) -> None:
    write_json(tmp_path / "run.json", {**RUN, "shiny": 1, "tests": [{**TEST, "future": True}]})
    run = read_run(tmp_path)
    assert run.problems == [] and run.record is not None
    assert [(t.id, t.nodeid, t.folder) for t in run.tests] == [("a", "t.py::a", None)]


def test_a_folder_that_is_not_a_run_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(NotARunFolder, match=re.escape(f"{tmp_path / 'nothing'}: no such folder")):
        open_run(tmp_path / "nothing")
    (tmp_path / "session").mkdir()
    (tmp_path / "session" / "serial-virtual.log").write_text("x", encoding="utf-8")
    with pytest.raises(NotARunFolder) as refused:
        open_run(tmp_path)
    assert refused.value.path == tmp_path and "no run.json and no test timeline" in str(refused.value)
    # The tolerant reader says the same as a problem.
    (problem,) = read_run(tmp_path).problems
    assert isinstance(problem, NotARunFolder) and str(problem).startswith(f"{tmp_path}: no run.json")


def test_report_and_replay_read_the_same_tests(tmp_path: Path) -> None:
    run_folder = write_run(tmp_path)
    report = load_run(run_folder)
    replay = ReplaySource(run_folder).tests()
    assert [t.record.nodeid for t in report.tests] == [t.nodeid for t in replay]
    assert [t.folder for t in report.tests] == [t.folder for t in replay]
    # The entries are the same, in time order.
    entries = read_run(run_folder).test(ONE).read_entries()
    assert report.tests[0].entries == entries
    assert [e["t"] for e in entries] == sorted(e["t"] for e in entries)


def test_a_test_folder_and_a_run_of_several_boards(tmp_path: Path) -> None:
    run_folder = write_run(tmp_path)
    (single,) = read_run(run_folder / TWO).tests
    assert (single.id, single.outcome) == (TWO, "failed")
    boards = tmp_path / "boards"
    boards.mkdir()
    run_folder.rename(boards / "vtest")
    run = read_run(boards)
    assert list(run.records) == ["vtest"] and run.boards() == ["vtest"] and run.problems == []
    assert [t.id for t in run.tests] == [f"vtest/{ONE}", f"vtest/{TWO}"]


def test_tests_on_disk_that_the_run_did_not_record_come_last(tmp_path: Path) -> None:
    run_folder = write_run(tmp_path)
    doc = json.loads((run_folder / "run.json").read_text(encoding="utf-8"))
    doc["tests"] = doc["tests"][1:]  # killed before it rewrote run.json with the first test
    write_json(run_folder / "run.json", doc)
    tests = read_run(run_folder).tests
    assert [(t.id, t.outcome) for t in tests] == [(TWO, "failed"), (ONE, "")]
    # The report shows what run.json recorded; the replay every timeline.
    assert [t.record.nodeid for t in load_run(run_folder).tests] == ["tests/hil/test_echo.py::test_two"]
    assert [t.id for t in ReplaySource(run_folder).tests()] == [TWO, ONE]
