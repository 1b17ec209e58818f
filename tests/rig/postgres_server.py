"""A real PostgreSQL server for the results store's tests (Debian's ``postgresql`` package):
``initdb`` into a temporary folder and ``postgres`` on a Unix socket there, both as ``nobody``
(postgres refuses to run as root), stopped by PID at the end. Shared by the store's PostgreSQL
tests (test_history_postgres.py) and the lab-over-time test (test_lab_over_time.py)."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rig.deadline import Deadline

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


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """A fresh PostgreSQL server; its URL (``postgresql+psycopg://`` over its socket). Skips the
    test when the server's programs are missing."""
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
