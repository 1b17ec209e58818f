"""``rig gate`` and the tests of several boards: left out of the board runs, run once per group of
boards that can play them, their results naming every board; too few boards, a line saying what
was needed.

Real gates on real virtual boards (an inventory entry with ``count``), in-process (``main``) as in
test_parallel_gate.py. To stay cheap the suite is tiny: one test of one board, which needs no
board, and one test of the HIL suite's several-boards tests (imported, so that it runs as it is
there; ``permute=True`` makes it two: ``[a-b]`` and ``[b-a]``).
"""

from __future__ import annotations

import hashlib
import json
import os
import textwrap
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from rig.cli import main
from rig.history.folder import read_gate_folder
from tests.rig.processes_left import processes_naming
from tests.rig.test_release_gate import next_micropython  # noqa: F401  (a fixture: a second runtime)

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
FIRMWARE = REPO / "firmware"
SEVERAL = "test_a_message_for_a_circulates_on_a_and_never_reaches_b"
SUITE = f"""\
from tests.hil.test_several_boards import {SEVERAL}  # noqa: F401


def test_of_one_board():
    pass
"""


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No settings from the caller's shell, locks of our own, the rig (and tests.hil) importable
    in the runs; afterwards no process of this test may be left."""
    for name in list(os.environ):
        if name.startswith("RIG_"):
            monkeypatch.delenv(name)
    state = tmp_path / "state"  # virtual boards' flashes of our own
    state.mkdir(mode=0o700)
    monkeypatch.setenv("RIG_STATE_DIR", str(state))
    monkeypatch.setenv("RIG_LOCK_DIR", str(tmp_path / "locks"))
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.setenv("RIG_TIMEOUT", "5")
    monkeypatch.chdir(REPO)
    yield
    assert processes_naming(str(tmp_path)) == {}


def gate(tmp_path: Path, boards: int | str, *more: str) -> tuple[int, Path]:
    """A gate over ``boards`` virtual boards (or that inventory's text): its exit code and its
    output folder."""
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "conftest.py").write_text('pytest_plugins = ["rig.plugin"]\n')
    (suite / "test_tiny.py").write_text(textwrap.dedent(SUITE))
    inventory = tmp_path / "boards.yaml"
    if isinstance(boards, int):
        boards = f"boards:\n  - name: vb\n    kind: virtual\n    count: {boards}\n"
    inventory.write_text(boards)
    out = tmp_path / "gate"
    args = ["gate", "--firmware", str(FIRMWARE), "--inventory", str(inventory), "--suite", str(suite)]
    code = main([*args, "--out", str(out), "--timeout", "120", *more])
    return code, out


def suites(out: Path) -> dict[str, ET.Element]:
    return {s.get("name", ""): s for s in ET.parse(out / "junit.xml").getroot().findall("testsuite")}


def properties(element: ET.Element) -> dict[str, list[str]]:
    """The properties of a suite or a testcase itself, not of the testcases it holds."""
    found: dict[str, list[str]] = {}
    own = element.find("properties")
    for p in own.iter("property") if own is not None else ():
        found.setdefault(p.get("name", ""), []).append(p.get("value", ""))
    return found


def test_two_boards_run_the_test_of_two_once_as_a_group_that_names_both(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = gate(tmp_path, 2)
    printed = capsys.readouterr()
    lines = printed.out.splitlines()
    assert code == 0, printed.out + printed.err

    # Each board's run ran its own test alone and listed the test of two boards it left out.
    for board in ("vb-1", "vb-2"):
        assert f"{board}: PASS 1 passed" in lines, lines
        listed = json.loads((out / board / "boards-tests.json").read_text())
        assert [entry["nodeid"].split("::")[1] for entry in listed] == [f"{SEVERAL}[a-b]", f"{SEVERAL}[b-a]"]
    # The group's run: its own folder, its boards' inventory alone, audited like the others.
    group = "boards-vb-1+vb-2"
    assert f"{group}: PASS 2 passed" in lines, lines
    at = lines.index(f"{group}: PASS 2 passed")
    assert lines[at + 1].startswith(f"  secrets audit: {group} clean ("), lines
    assert "vb-1" in (out / group / "group-inventory.yaml").read_text()
    assert any(line.startswith("GATE: PASS") for line in lines[at:]), lines

    # JUnit: the group's suite names both boards, and each test which board played which role.
    junit = suites(out)
    assert list(junit) == ["vb-1", "vb-2", group]
    assert properties(junit[group])["boards"] == ["vb-1, vb-2"]
    roles = {case.get("name"): properties(case).get("boards") for case in junit[group].iter("testcase")}
    assert roles == {f"{SEVERAL}[a-b]": ["a=vb-1 b=vb-2"], f"{SEVERAL}[b-a]": ["a=vb-2 b=vb-1"]}, roles
    # The report: the group's column, and every result with its boards.
    report = (out / "report.html").read_text()
    assert group in report and "a=vb-1 b=vb-2" in report and "a=vb-2 b=vb-1" in report
    # The results store reads the group's run as one of the gate's runs.
    stored = read_gate_folder(out)
    results = sorted((r.nodeid.split("::")[-1], r.outcome) for r in stored.results if r.board == group)
    assert results == [(f"{SEVERAL}[a-b]", "passed"), (f"{SEVERAL}[b-a]", "passed")]


def test_one_board_skips_the_step_saying_what_it_needed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = gate(tmp_path, 1)
    printed = capsys.readouterr()
    assert code == 0, printed.out + printed.err
    skipped = (
        "needed boards a=any, b=any (2 boards) for 2 tests: no group of the gate's boards can play "
        "these roles; the gate runs 1: vb-1"
    )
    assert f"several boards: SKIPPED {skipped}" in printed.out.splitlines(), printed.out
    junit = suites(out)
    assert list(junit) == ["vb-1", "several-boards"]
    (case,) = junit["several-boards"].iter("testcase")
    skip = case.find("skipped")
    assert skip is not None and skip.get("message") == skipped
    assert not [p for p in out.iterdir() if p.name.startswith("boards-")]


def test_with_flash_a_groups_boards_are_flashed_to_their_pins_for_the_groups_run(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    next_micropython: Path,  # noqa: F811  (the fixture imported above)
) -> None:
    """A virtual board pinned to an image runs it only once flashed, and a group's run gives each
    board a session folder, so a flash of its own: without it the group's run would be stopped,
    the board off its pin (the runtime matrix of docs/lab.md, with several boards)."""
    digest = hashlib.sha256(next_micropython.read_bytes()).hexdigest()
    pinned = f"{{port: linux, image: {next_micropython}, sha256: {digest}}}"
    bench = (
        "boards:\n"
        + f"  - {{name: pinned, kind: virtual, runtime: {pinned}}}\n  - {{name: plain, kind: virtual}}\n"
    )
    code, out = gate(tmp_path, bench, "--flash")
    printed = capsys.readouterr()
    assert code == 0, printed.out + printed.err
    group = "boards-pinned+plain"
    assert f"{group}: PASS 2 passed" in printed.out.splitlines(), printed.out
    flashed = json.loads((out / group / "flash-pinned.json").read_text())
    assert flashed["written"] and flashed["steps"][-1] == "runtime"
    flash = properties(suites(out)[group])["flash"]
    assert flash[0].startswith("pinned: wrote and verified") and "plain: not flashed" in flash[0], flash
