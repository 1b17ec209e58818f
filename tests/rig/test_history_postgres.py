"""The results store on a real PostgreSQL server that each test starts itself
(tests/rig/postgres_server.py: Debian's ``postgresql``, as ``nobody``, stopped by PID): two gates
writing at once, ``rig history``, a newer schema refused, and board health (its states and
``rig lab health --set``) on PostgreSQL. Integration tier (it starts processes: conftest.py
STARTS_PROCESSES)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rig.cli import main
from rig.history.health import BAD, GOOD, MAINTENANCE, SUSPECT, board_health, lab_health
from rig.history.models import Result, Run
from rig.history.records import ResultIn, RunIn
from rig.history.store import HistoryError, open_store
from tests.rig.postgres_server import READY_BOUND_S, postgres_server


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL server; its URL."""
    with postgres_server() as url:
        yield url


# One gate's writer, as a process of its own: it opens the store (migrating it if it is new)
# and writes its runs.
WRITER = """
import sys
from rig.history.records import ResultIn, RunIn
from rig.history.store import open_store
url, host = sys.argv[1], sys.argv[2]
print("ready", flush=True)
sys.stdin.readline()  # the go: both writers open the fresh database at the same moment
with open_store(url) as store:
    for n in range(20):
        board = host + "-board"
        results = tuple(ResultIn(board, f"tests/hil/test_x.py::test_{t}", "passed", "none") for t in range(3))
        assert store.write(RunIn(f"{host}-{n}", "gate", 1_800_000_000.0 + n, host=host, results=results))
"""


def test_two_gates_writing_at_once_into_a_fresh_database_lose_nothing(postgres_url: str) -> None:
    """Two processes open the empty database at once (one migrates, the other waits on its
    lock), then write their runs interleaved; every run and result is there, each once."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, postgres_url, host], env=env, stderr=subprocess.PIPE, text=True
        )
        for host in ("lab-a", "lab-b")
    ]
    for writer in writers:
        try:
            _, err = writer.communicate(timeout=READY_BOUND_S)  # closes its stdin
        except subprocess.TimeoutExpired:
            writer.kill()
            _, err = writer.communicate()
        assert writer.returncode == 0, f"a writer failed: {err[-2000:]}"
    with open_store(postgres_url) as store:
        assert sorted(store.run_keys()) == sorted(f"{h}-{n}" for h in ("lab-a", "lab-b") for n in range(20))
        assert (store.count(Run), store.count(Result)) == (40, 120)
        assert store.write(RunIn("lab-a-0", "gate", 1_800_000_000.0)) is False


def test_rig_history_reads_a_postgresql_store(postgres_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    with open_store(postgres_url) as store:
        result = ResultIn(
            "usb-1", "tests/hil/test_faults.py::test_wifi", "error", "infrastructure", message="port gone"
        )
        store.write(RunIn("night-1", "gate", 1_800_000_000.0, results=(result,)))
    assert main(["history", "--history", postgres_url, "--board", "usb-1"]) == 0
    out = capsys.readouterr().out
    assert "ERROR (infrastructure)" in out and "port gone" in out


def test_a_postgresql_store_migrated_further_is_refused(postgres_url: str) -> None:
    with open_store(postgres_url) as store, store.engine.begin() as connection:
        connection.exec_driver_sql("UPDATE rig_history_version SET version_num = '0099_later'")
    with pytest.raises(HistoryError, match=r"migration 0099_later, newer than this rig knows"):
        open_store(postgres_url)


def test_board_health_and_rig_lab_health_set_on_a_postgresql_store(
    postgres_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The states computed from stored infrastructure results, and a state set by hand with
    ``rig lab health --set`` (the ``board_state`` table), on PostgreSQL as on SQLite."""
    inventory = tmp_path / "boards.yaml"
    inventory.write_text("boards:\n  - name: usb-1\n    kind: virtual\n  - name: usb-2\n    kind: virtual\n")
    lab = ["--inventory", str(inventory), "--history", postgres_url]
    with open_store(postgres_url) as store:
        for night in range(3):
            lost = ResultIn("usb-1", "(run)", "error", "infrastructure", message=f"port gone, night {night}")
            fine = ResultIn("usb-2", "tests/hil/test_x.py::test_echo", "passed", "none")
            store.write(RunIn(f"night-{night}", "gate", 1_700_000_000.0 + 3600 * night, results=(lost, fine)))
            if night == 0:
                assert board_health(store, "usb-1", 3).state == SUSPECT
        bad = board_health(store, "usb-1", 3)
        assert (bad.state, bad.why) == (BAD, "3 infrastructure failures in a row (last: port gone, night 2)")
        assert bad.since is not None and bad.since.timestamp() == 1_700_000_000.0  # the first of the three
        assert [h.state for h in lab_health(store, ["usb-1", "usb-2"], 3)] == [BAD, GOOD]

    assert main(["lab", "health", *lab]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert shown == [
        f"usb-1: {bad.describe()}",
        "usb-2: good since 2023-11-15 00:13 UTC: its last run had no infrastructure failure",
    ]
    assert main(["lab", "health", "usb-2", "--set", "maintenance", "--why", "new hub", *lab]) == 0
    assert main(["lab", "health", "usb-1", "--set", "good", *lab]) == 0
    capsys.readouterr()
    assert main(["lab", "health", *lab]) == 0
    one, two = capsys.readouterr().out.splitlines()
    assert one.startswith("usb-1: good since ") and "set good by hand" in one  # its past forgiven
    assert two.startswith("usb-2: maintenance since ") and ": new hub (set by " in two
    with open_store(postgres_url) as store:
        assert board_health(store, "usb-2", 3).state == MAINTENANCE
