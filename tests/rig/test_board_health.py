"""Board health (rig.history.health) from a real SQLite store: the states computed from stored
infrastructure results, the states set by hand, the gate's and tag: claims' skipping with the
reason, the safety valve and the fewest-failures order, and ``rig lab health``. No process is
started: the fast tier."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from itertools import count
from pathlib import Path

import pytest

from rig.board_choice import NoFreeBoard, claim_board, health_order, selected_boards
from rig.cli import main
from rig.cli.gate import out_of_rotation as gate_rotation
from rig.cli.gate import verdict_line
from rig.errors import ConfigError
from rig.gate.junit import write_junit
from rig.gate.plan import plan_boards
from rig.gate.results import BoardResult
from rig.history.health import (
    BAD,
    GOOD,
    MAINTENANCE,
    RETIRED,
    SUSPECT,
    Health,
    ValveTripped,
    board_health,
    by_fewest_failures,
    configured,
    out_of_rotation,
    set_state,
)
from rig.history.records import ResultIn, RunIn
from rig.history.store import Store, default_url, open_store
from rig.inventory import load_inventory

INVENTORY = """\
boards:
  - name: one
    kind: virtual
    tags: [lab]
  - name: two
    kind: virtual
    tags: [lab]
  - name: three
    kind: virtual
    tags: [lab]
"""
_runs = count()
pytest_plugins = ["pytester"]


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    path = tmp_path / "lab" / "boards.yaml"
    path.parent.mkdir()
    path.write_text(INVENTORY)
    return path


@pytest.fixture
def store(inventory: Path) -> Iterator[Store]:
    with open_store(default_url(inventory)) as opened:
        yield opened


def night(store: Store, board: str, failure: str, message: str = "") -> None:
    """One gate run of ``board``: a pass, a firmware failure or an infrastructure failure."""
    n = next(_runs)
    outcome = "passed" if failure == "none" else "failed"
    store.write(
        RunIn(
            key=f"run-{n}",
            kind="gate",
            started=1_700_000_000.0 + 3600 * n,
            results=(
                ResultIn(board, "tests/hil/test_echo_loop.py::test_echo", "passed", "none"),
                ResultIn(board, "tests/hil/test_b.py::test_b", outcome, failure, message=message),  # type: ignore[arg-type]
            ),
        )
    )


def test_infrastructure_failures_in_a_row_make_a_board_suspect_then_bad_and_a_pass_good(store: Store) -> None:
    assert board_health(store, "one", 3).state == GOOD
    night(store, "one", "none")
    night(store, "one", "infrastructure", "port vanished")
    assert board_health(store, "one", 3).state == SUSPECT
    night(store, "one", "infrastructure", "port vanished")
    night(store, "one", "infrastructure", "broker down")
    bad = board_health(store, "one", 3)
    assert bad.state == BAD
    assert bad.why == "3 infrastructure failures in a row (last: broker down)"
    assert bad.since is not None and bad.since.year == 2023  # the first of the three
    assert "bad since 2023-" in bad.describe()
    assert board_health(store, "one", 4).state == SUSPECT  # N is the caller's
    night(store, "one", "firmware", "assert False")  # the board worked: the firmware failed
    assert board_health(store, "one", 3).state == GOOD
    assert board_health(store, "two", 3).state == GOOD  # another board's results are not its own


def test_a_state_set_by_hand_holds_until_set_good_which_forgives_the_past(store: Store) -> None:
    for _ in range(3):
        night(store, "one", "infrastructure", "port vanished")
    with pytest.raises(ConfigError, match="needs a reason"):
        set_state(store, "two", MAINTENANCE, " ")
    with pytest.raises(ConfigError, match="a person sets one of"):
        set_state(store, "two", BAD, "no")
    set_state(store, "two", MAINTENANCE, "reflashing the bootloader", set_by="ana")
    night(store, "two", "none")  # a pass does not end maintenance
    two = board_health(store, "two", 3)
    assert (two.state, two.why, two.set_by) == (MAINTENANCE, "reflashing the bootloader", "ana")
    set_state(store, "one", RETIRED, "cracked USB connector", set_by="ana")
    assert board_health(store, "one", 3).state == RETIRED
    set_state(store, "one", GOOD, "", set_by="ana")
    assert board_health(store, "one", 3).state == GOOD  # its old failures are forgiven


def health(board: str, state: str, failures: int = 0) -> Health:
    return Health(board, state, f"{board} is {state}", None, "", failures)


def test_the_valve_trips_rather_than_take_out_more_than_the_share() -> None:
    lab = [health("a", BAD), health("b", GOOD), health("c", MAINTENANCE), health("d", SUSPECT)]
    assert [h.board for h in out_of_rotation(lab, 0.5)] == ["a", "c"]  # 1 bad of 3 in service
    assert len(out_of_rotation([*lab, health("e", BAD)], 0.5)) == 3  # 2 bad of 4 in service: 50%
    with pytest.raises(ValveTripped) as tripped:
        out_of_rotation([*lab, health("e", BAD), health("f", BAD)], 0.5)
    message = str(tripped.value)
    assert "3 of 5 boards would be taken out of rotation (60%, more than the allowed 50%)" in message
    assert "a: bad" in message and "f: bad" in message
    with pytest.raises(ValveTripped):
        out_of_rotation([health("solo", BAD)], 0.5)


def test_claims_prefer_the_healthy_board_with_the_fewest_recent_failures() -> None:
    lab = [health("a", SUSPECT, 1), health("b", GOOD, 4), health("c", BAD, 5), health("d", GOOD, 1)]
    assert [h.board for h in by_fewest_failures(lab)] == ["d", "b", "a"]


def test_a_tag_claim_skips_a_bad_board_names_why_and_takes_the_fewest_failures(
    store: Store, inventory: Path, tmp_path: Path
) -> None:
    for _ in range(3):
        night(store, "one", "infrastructure", "port vanished")
    night(store, "two", "infrastructure", "broker down")
    night(store, "two", "none")
    night(store, "three", "none")
    lab = load_inventory(inventory)
    candidates, resting = health_order(selected_boards(lab, "tag:lab"), None, inventory)
    assert [spec.name for spec in candidates] == ["three", "two"]
    assert resting["one"].startswith("bad since ") and "port vanished" in resting["one"]
    spec, lock = claim_board(candidates, lambda s: tmp_path / s.name, "test", lock_dir=tmp_path / "locks")
    lock.release()
    assert spec.name == "three"
    with pytest.raises(NoFreeBoard, match=r"one out of rotation") as none:
        claim_board([], lambda s: tmp_path, "test", selection="tag:lab", resting=resting)
    assert "one: out of rotation: bad since" in str(none.value)


def test_the_gate_skips_a_bad_board_and_reports_why_in_its_verdict_and_junit(
    store: Store, inventory: Path, tmp_path: Path
) -> None:
    for _ in range(3):
        night(store, "two", "infrastructure", "port vanished")
    planned = gate_rotation(store, plan_boards(load_inventory(inventory)))
    assert [(p.name, p.present) for p in planned] == [("one", True), ("two", False), ("three", True)]
    skipped = BoardResult(planned[1], strict=False)
    line = verdict_line(skipped)
    assert line.startswith("two: SKIPPED out of rotation: bad since 2023-")
    assert "3 infrastructure failures in a row (last: port vanished)" in line
    out = tmp_path / "gate"
    out.mkdir()
    write_junit(out / "junit.xml", [skipped], out)
    case = ET.parse(out / "junit.xml").getroot().find(".//testcase[@name='board-present']")
    assert case is not None
    reason = case.find("skipped")
    assert reason is not None and "board two out of rotation: bad since" in reason.get("message", "")


def test_the_gate_fails_loudly_when_the_valve_trips(store: Store, inventory: Path) -> None:
    for board in ("one", "two"):
        for _ in range(3):
            night(store, board, "infrastructure", "hub unpowered")
    with pytest.raises(ValveTripped, match="2 of 3 boards"):
        gate_rotation(store, plan_boards(load_inventory(inventory)))


def test_rig_lab_health_shows_and_sets_states(
    store: Store, inventory: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    night(store, "one", "infrastructure", "port vanished")
    assert main(["lab", "health", "--inventory", str(inventory)]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert shown[0].startswith("one: suspect since 2023-") and "port vanished" in shown[0]
    assert shown[1] == "two: good: no run stored yet"
    assert main(["lab", "health", "two", "--set", "maintenance", "--inventory", str(inventory)]) == 2
    assert "needs a reason" in capsys.readouterr().err
    args = [
        "lab",
        "health",
        "two",
        "--set",
        "maintenance",
        "--why",
        "new cable",
        "--inventory",
        str(inventory),
    ]
    assert main(args) == 0
    assert main(["lab", "health", "two", "--inventory", str(inventory)]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("two: maintenance since ")
    assert main(["lab", "health", "nosuch", "--inventory", str(inventory)]) == 2


def test_the_settings_are_read_and_a_bad_share_is_named() -> None:
    assert configured({}) == (3, 0.5)
    assert configured({"RIG_HEALTH_BAD_AFTER": "5", "RIG_HEALTH_MAX_OUT": "0.25"}) == (5, 0.25)
    with pytest.raises(ConfigError, match=r"RIG_HEALTH_MAX_OUT.*'half'"):
        configured({"RIG_HEALTH_MAX_OUT": "half"})


def test_a_pytest_tag_claim_takes_the_healthiest_board_of_the_tag(
    inner: pytest.Pytester, store: Store, inventory: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(3):
        night(store, "one", "infrastructure", "port vanished")  # bad: skipped
    night(store, "two", "infrastructure", "broker down")  # suspect: after the good ones
    night(store, "three", "none")
    monkeypatch.setenv("RIG_LOCK_DIR", str(tmp_path / "locks"))
    inner.makepyfile(test_one="def test_ok(): pass\n")
    artifacts = tmp_path / "artifacts"
    result = inner.runpytest_inprocess(
        f"--rig-inventory={inventory}", "--rig-board=tag:lab", f"--rig-artifacts={artifacts}"
    )
    result.assert_outcomes(passed=1)
    assert sorted(p.name for p in artifacts.iterdir() if p.is_dir()) == ["three"]
