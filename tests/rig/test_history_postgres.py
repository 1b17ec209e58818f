"""The results store on a real PostgreSQL server that the test starts itself (Debian's
``postgresql`` package): ``initdb`` into a temporary folder and ``postgres`` on a Unix socket
there, both as ``nobody`` (postgres refuses to run as root), stopped by PID at the end.
Integration tier: it starts processes (conftest.py STARTS_PROCESSES)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rig.cli import main
from rig.deadline import Deadline
from rig.history.models import Result, Run
from rig.history.records import ResultIn, RunIn
from rig.history.store import HistoryError, open_store

READY_BOUND_S = 60.0
STOP_BOUND_S = 20.0
PORT = 5432  # the socket's name only: the server listens on no TCP port (-h '')


def _binaries() -> Path | None:
    found = shutil.which("postgres")
    if found is not None:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    return Path(versions[-1]).parent if versions else None


def _as_nobody() -> Callable[[], None]:
    user = pwd.getpwnam("nobody")

    def drop() -> None:
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)

    return drop


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL server; its URL (``postgresql+psycopg://`` over its socket)."""
    binaries = _binaries()
    if binaries is None or not (binaries / "initdb").exists():
        pytest.skip(
            "not checked: PostgreSQL store, postgres and initdb are missing (Debian package postgresql)"
        )
    user = pwd.getpwnam("nobody")
    # Not under pytest's tmp_path: its parents are root's and closed to nobody.
    home = Path(tempfile.mkdtemp(prefix="rig-postgres-"))
    os.chown(home, user.pw_uid, user.pw_gid)
    data, log = home / "data", home / "postgres.log"
    try:
        subprocess.run(
            [str(binaries / "initdb"), "-D", str(data), "-U", "rig", "--auth=trust", "--no-sync"],
            preexec_fn=_as_nobody(),
            check=True,
            capture_output=True,
            timeout=READY_BOUND_S,
            cwd=home,
        )
        with open(log, "wb") as out:
            server = subprocess.Popen(
                [
                    str(binaries / "postgres"),
                    "-D",
                    str(data),
                    "-k",
                    str(home),
                    "-h",
                    "",
                    "-p",
                    str(PORT),
                    "-F",
                ],
                preexec_fn=_as_nobody(),
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=home,
            )
        try:
            deadline = Deadline(READY_BOUND_S)
            # The server says so in its log when it takes connections (the event waited on).
            while "ready to accept connections" not in log.read_text(errors="replace"):
                if server.poll() is not None or deadline.expired:
                    pytest.fail(
                        f"postgres not ready within {READY_BOUND_S} s (exit {server.poll()}); "
                        f"its log {log}: {log.read_text(errors='replace')[-800:]}"
                    )
                time.sleep(0.05)
            yield f"postgresql+psycopg://rig@/postgres?host={home}&port={PORT}"
        finally:
            server.terminate()  # SIGTERM: postgres's "smart" shutdown, by PID
            try:
                server.wait(STOP_BOUND_S)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(STOP_BOUND_S)
    finally:
        shutil.rmtree(home, ignore_errors=True)


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
