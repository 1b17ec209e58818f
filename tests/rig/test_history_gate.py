"""``rig gate`` writes every run it makes into the results store, as one gate run (its board
runs do not write their own), and importing its folder again later adds nothing. A real gate
on the virtual board, with a suite that needs no board: integration tier (it starts pytests)."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from rig.cli import main
from rig.discovery import ports as discovery_ports
from rig.history.models import Run
from rig.history.store import default_url, open_store
from tests.rig.gate_inventory import write_gate_inventory

REPO = Path(__file__).resolve().parents[2]
SUITE = """\
def test_fine():
    pass


def test_broken():
    assert False, "broken on purpose"
"""


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for name in ("RIG_BOARD", "RIG_INVENTORY", "RIG_ARTIFACTS", "RIG_FIRMWARE", "RIG_HISTORY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RIG_LOCK_DIR", str(tmp_path / "locks"))
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.setattr(discovery_ports, "list_serial_ports", lambda: [])
    monkeypatch.chdir(REPO)
    yield


def gate(tmp_path: Path, out: Path, *more: str, body: str = SUITE) -> int:
    suite = tmp_path / "suite"
    suite.mkdir(exist_ok=True)
    (suite / "conftest.py").write_text('pytest_plugins = ["rig.plugin"]\n')
    (suite / "test_tiny.py").write_text(textwrap.dedent(body))
    inventory = write_gate_inventory(tmp_path)
    args = ["gate", "--firmware", str(REPO / "firmware"), "--inventory", str(inventory), "--out", str(out)]
    return main([*args, "--suite", str(suite), "--boards", "virtual", *more])


def test_a_gate_writes_its_run_beside_the_inventory_and_a_reimport_adds_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "gate"
    assert gate(tmp_path, out) == 1  # test_broken: a firmware failure
    printed = capsys.readouterr().out
    url = default_url(tmp_path / "boards.yaml")
    assert f"history: 2 results stored in {url}" in printed

    assert main(["history", "--history", url, "import", str(out)]) == 0
    assert "0 run(s) imported" in capsys.readouterr().out
    with open_store(url) as store:
        assert store.count(Run) == 1
        rows = {r.nodeid.split("::")[1]: r for r in store.outcomes(board="virtual")}
    assert {name: (r.outcome, r.failure, r.run_kind) for name, r in rows.items()} == {
        "test_fine": ("passed", "none", "gate"),
        "test_broken": ("failed", "firmware", "gate"),
    }
    assert "broken on purpose" in rows["test_broken"].message


def test_with_rig_history_set_the_board_runs_do_not_write_a_second_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'elsewhere.sqlite'}"
    monkeypatch.setenv("RIG_HISTORY", url)  # the gate's store, and inherited by its pytests
    assert gate(tmp_path, tmp_path / "gate") == 1
    assert f"history: 2 results stored in {url}" in capsys.readouterr().out
    with open_store(url) as store:
        assert [r.run_kind for r in store.outcomes(board="virtual")] == ["gate", "gate"]
    assert not (tmp_path / "rig-history.sqlite").exists()


def test_a_bad_history_url_stops_the_gate_before_it_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "gate"
    assert gate(tmp_path, out, "--history", "nosuchdb://x") == 2
    assert "nosuchdb://x: not a database URL" in capsys.readouterr().err
    assert not out.exists()


def test_a_board_run_the_gate_killed_is_stored_as_infrastructure_failures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Killed at --timeout twice (the run and its retry): the store has both attempts' tests as
    they stood and the gate's word on the final run; board health counts on these."""
    hangs = "import time\n\n\ndef test_fine():\n    pass\n\n\ndef test_hangs():\n    time.sleep(300)\n"
    assert gate(tmp_path, tmp_path / "gate", "--timeout", "3", body=hangs) == 3
    capsys.readouterr()
    with open_store(default_url(tmp_path / "boards.yaml")) as store:
        rows = store.outcomes(board="virtual")
    runs = [r for r in rows if r.nodeid == "(run)"]
    assert [(r.outcome, r.failure) for r in runs] == [("error", "infrastructure")]
    assert runs[0].message == "virtual-retry1: timed out after 3s, killed"
    assert sorted(r.nodeid.split("::")[-1] for r in rows if r.nodeid != "(run)") == ["test_fine", "test_fine"]
