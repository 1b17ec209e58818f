"""BoardLock against real processes: exclusion, waiting, takeover from a dead holder, records."""

from __future__ import annotations

import fcntl
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import rig.lock
from rig.errors import ConfigError, InfrastructureError
from rig.lock import AlreadyHeld, BoardBusy, BoardLock, Holder, LockBusy, NamedLock, lock_file_name

ROOT = Path(__file__).resolve().parents[2]
IDENTITY = "usb-10c4-0001"

# Holds the lock until stdin closes (or, with a third argument, after starting a grandchild that
# outlives it), announcing each step on stdout so that the test sequences on events, not sleeps.
CHILD = """
import subprocess, sys
from pathlib import Path
from rig.lock import BoardLock
lock = BoardLock(sys.argv[1], Path(sys.argv[2]), purpose="child purpose")
lock.acquire(timeout=10)
if len(sys.argv) > 3:
    grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    print("GRANDCHILD", grandchild.pid, flush=True)
print("HELD", flush=True)
sys.stdin.read()
lock.release()
print("RELEASED", flush=True)
"""


class Child:
    def __init__(self, lock_dir: Path, *extra: str) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, IDENTITY, str(lock_dir), *extra],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.pid = self.proc.pid

    def expect(self, word: str) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # bounded: the child exits (EOF) on any failure
        assert line.split()[:1] == [word], f"child said {line!r}, expected {word}"
        return line

    def let_go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()


@pytest.fixture
def child(tmp_path: Path) -> Iterator[Child]:
    c = Child(tmp_path)
    yield c
    c.stop()


def test_another_process_holds_then_releases(tmp_path: Path, child: Child) -> None:
    child.expect("HELD")
    lock = BoardLock(IDENTITY, tmp_path, purpose="test")
    assert lock.is_locked()
    with pytest.raises(BoardBusy) as busy:
        lock.acquire(timeout=0.3)
    message = str(busy.value)
    assert isinstance(busy.value, InfrastructureError)
    assert f"board {IDENTITY} is in use by pid {child.pid} (" in message
    assert "purpose child purpose" in message
    assert "-c" in message  # the child's command line
    assert message.endswith("waited 0.3s")
    assert busy.value.holder is not None and busy.value.holder.pid == child.pid
    assert not lock.held

    child.let_go()
    child.expect("RELEASED")
    started = time.monotonic()
    lock.acquire(timeout=5)
    assert time.monotonic() - started < 1.0  # the first try succeeds: no poll wait
    holder = lock.holder()
    assert holder is not None and holder.pid == os.getpid()
    lock.release()


def test_acquire_waits_for_a_release(tmp_path: Path, child: Child) -> None:
    child.expect("HELD")
    lock = BoardLock(IDENTITY, tmp_path)
    # Whether the child lets go before or during our wait, the acquire must succeed in time.
    threading.Thread(target=child.let_go).start()
    lock.acquire(timeout=10, poll=0.02)
    assert lock.held
    lock.release()


def test_lock_of_a_sigkilled_holder_is_taken_over_at_once(tmp_path: Path, child: Child) -> None:
    child.expect("HELD")
    os.kill(child.pid, signal.SIGKILL)
    child.proc.wait(timeout=10)

    lock = BoardLock(IDENTITY, tmp_path, purpose="takeover")
    stale = Holder.parse(lock.path.read_bytes())
    assert stale is not None and stale.pid == child.pid  # the dead holder's record is still there
    assert not lock.is_locked()
    assert lock.holder() is None  # ...but a free board reports no holder

    lock.acquire(timeout=0)
    holder = lock.holder()
    assert holder is not None and holder.pid == os.getpid() and holder.purpose == "takeover"
    lock.release()


def test_programs_started_by_the_holder_do_not_inherit_the_lock(tmp_path: Path) -> None:
    child = Child(tmp_path, "spawn")
    grandchild_pid = int(child.expect("GRANDCHILD").split()[1])
    try:
        child.expect("HELD")
        os.kill(child.pid, signal.SIGKILL)
        child.proc.wait(timeout=10)
        assert os.path.exists(f"/proc/{grandchild_pid}")  # still running, yet the board is free
        lock = BoardLock(IDENTITY, tmp_path)
        lock.acquire(timeout=0)
        lock.release()
    finally:
        child.stop()
        os.kill(grandchild_pid, signal.SIGKILL)


def test_two_objects_in_one_process_exclude_each_other(tmp_path: Path) -> None:
    first = BoardLock(IDENTITY, tmp_path, purpose="first")
    second = BoardLock(IDENTITY, tmp_path, purpose="second")
    first.acquire(timeout=0)
    with pytest.raises(BoardBusy, match=rf"in use by pid {os.getpid()} .*purpose first\) — waited 0.2s"):
        second.acquire(timeout=0.2)
    first.release()
    second.acquire(timeout=0)
    second.release()


def test_a_named_lock_names_what_it_guards_and_is_apart_from_boards(tmp_path: Path) -> None:
    # The same mechanism for anything the rig does one process at a time (rig.netns uses it).
    first = NamedLock("allocation", tmp_path, subject="the allocation", purpose="first")
    first.acquire(timeout=0)
    with pytest.raises(LockBusy) as busy:
        NamedLock("allocation", tmp_path, subject="the allocation").acquire(timeout=0.2)
    assert not isinstance(busy.value, BoardBusy)  # a board's waiter does not catch it as its own
    assert isinstance(busy.value, InfrastructureError)
    assert re.fullmatch(
        rf"the allocation is in use by pid {os.getpid()} \(.*purpose first\) — waited 0.2s", str(busy.value)
    )
    assert busy.value.waited == 0.2 and busy.value.path == first.path
    BoardLock("other", tmp_path).acquire(timeout=0)  # another identity: another lock
    first.release()


def test_acquiring_twice_is_an_error_and_release_is_idempotent(tmp_path: Path) -> None:
    lock = BoardLock(IDENTITY, tmp_path)
    lock.acquire(timeout=0)
    with pytest.raises(AlreadyHeld):
        lock.acquire(timeout=0)
    assert lock.held  # the failed second acquire left the first one alone
    lock.release()
    lock.release()
    assert not lock.is_locked()
    lock.acquire(timeout=0)  # reusable after release
    lock.release()


def test_context_manager(tmp_path: Path) -> None:
    with BoardLock(IDENTITY, tmp_path, purpose="ctx", timeout=0) as lock:
        assert lock.held and lock.is_locked()
        with pytest.raises(BoardBusy), BoardLock(IDENTITY, tmp_path, timeout=0):
            pass
    assert not lock.held and not lock.is_locked()
    assert lock.path.exists()  # never deleted: a waiter may have it open
    assert lock.path.read_bytes() == b""  # record cleared on release


def test_holder_record_and_probes(tmp_path: Path) -> None:
    lock = BoardLock(IDENTITY, tmp_path, purpose="pytest tests/hil")
    assert not lock.is_locked() and lock.holder() is None  # no file yet
    assert not lock.path.exists()  # probing creates nothing

    lock.acquire(timeout=0)
    holder = lock.holder()  # probing while we hold it reports us and keeps the lock
    assert holder is not None
    assert holder.pid == os.getpid()
    assert holder.purpose == "pytest tests/hil"
    assert holder.command and holder.user and holder.host
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", holder.since)
    assert lock.is_locked() and lock.is_locked()
    other = BoardLock(IDENTITY, tmp_path)
    assert other.is_locked() and other.holder() == holder
    with pytest.raises(BoardBusy):
        other.acquire(timeout=0)  # the probes above did not drop the held lock
    lock.release()
    assert not other.is_locked() and other.holder() is None


@pytest.mark.parametrize("content", [b"", b"garbage\x00\xff", b'{"pid": "x"}', b"[1, 2]"])
def test_unreadable_record_is_reported_not_fatal(tmp_path: Path, content: bytes) -> None:
    lock = BoardLock(IDENTITY, tmp_path)
    lock.acquire(timeout=0)
    lock.path.write_bytes(content)
    other = BoardLock(IDENTITY, tmp_path)
    assert other.is_locked() and other.holder() is None
    with pytest.raises(BoardBusy, match="empty or unreadable") as busy:
        other.acquire(timeout=0)
    assert busy.value.holder is None
    lock.release()


def test_wait_is_bounded_and_sleeps_between_tries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    holder = BoardLock(IDENTITY, tmp_path)
    holder.acquire(timeout=0)
    tries = 0
    real_flock = fcntl.flock

    def counting_flock(fd: int, op: int) -> None:
        nonlocal tries
        tries += 1
        real_flock(fd, op)

    # rig.lock uses the fcntl module itself: patching the module reaches it.
    monkeypatch.setattr(fcntl, "flock", counting_flock)
    started = time.monotonic()
    with pytest.raises(BoardBusy):
        BoardLock(IDENTITY, tmp_path).acquire(timeout=0.5, poll=0.1)
    elapsed = time.monotonic() - started
    monkeypatch.undo()
    holder.release()
    assert 0.5 <= elapsed < 2.0  # generous upper bound for a loaded CI machine
    assert 4 <= tries <= 10  # about one try per poll, not a hot spin


def test_lock_dir_is_created_shared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lock_dir = tmp_path / "a" / "locks"
    monkeypatch.setenv("RIG_LOCK_DIR", str(lock_dir))
    old_umask = os.umask(0o077)  # the strictest common umask must not leak into shared modes
    try:
        lock = BoardLock(IDENTITY)
        assert lock.path.parent == lock_dir
        lock.acquire(timeout=0)
        lock.release()
        BoardLock(IDENTITY).acquire(timeout=0)  # an existing directory and file are fine
    finally:
        os.umask(old_umask)
    assert lock_dir.stat().st_mode & 0o7777 == 0o1777
    assert lock.path.stat().st_mode & 0o7777 == 0o666


def test_default_lock_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RIG_LOCK_DIR", raising=False)
    assert BoardLock(IDENTITY).lock_dir == Path("/tmp/micropython-mqtt-rig-locks")


def test_a_symlink_is_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "victim"
    target.write_text("precious")
    lock = BoardLock(IDENTITY, tmp_path)
    lock.path.symlink_to(target)
    with pytest.raises(rig.lock.BoardLockError, match="symlink"):
        lock.acquire(timeout=0)
    assert target.read_text() == "precious"


def test_a_planted_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    lock = BoardLock(IDENTITY, tmp_path)
    os.mkfifo(lock.path)
    with pytest.raises(rig.lock.BoardLockError, match="is not a regular file"):
        lock.acquire(timeout=0)


def test_a_hard_link_is_refused_and_its_other_name_left_alone(tmp_path: Path) -> None:
    # Another user links a file the holder can write under the lock's name (where
    # fs.protected_hardlinks is off, any of root's): taking the lock would truncate it.
    target = tmp_path / "victim"
    target.write_text("precious")
    lock = BoardLock(IDENTITY, tmp_path)
    os.link(target, lock.path)
    with pytest.raises(rig.lock.BoardLockError, match=r"has 2 names \(a hard link"):
        lock.acquire(timeout=0)
    assert target.read_text() == "precious"


@pytest.mark.skipif(os.geteuid() != 0, reason="faking another owner needs root (chown)")
def test_a_private_lock_is_the_users_alone(tmp_path: Path) -> None:
    lock = NamedLock("allocation", tmp_path / "private", private=True)
    with lock:
        pass
    assert (lock.lock_dir.stat().st_mode & 0o7777, lock.path.stat().st_mode & 0o7777) == (0o700, 0o600)
    # A file of someone else's under its name (made while the folder was open, say) is refused.
    os.chown(lock.path, 1000, -1)
    with pytest.raises(rig.lock.BoardLockError, match=r"belongs to uid 1000, yet its folder is private"):
        lock.acquire(timeout=0)


def test_identity_sanitising(tmp_path: Path) -> None:
    identities = [
        "usb-10c4-0001",
        "virtual-virtual",
        "rfc2217://bench-3:4000",
        "rfc2217://bench-3_4000",
        "rfc2217___bench-3_4000",
        "rfc2217:/bench-3/4000",
        "../../etc/passwd",
        "..",
        ".",
        "x" * 1000,
        "x" * 1001,
        "\u043f\u043b\u0430\u0442\u0430 board",
        "-rf",
    ]
    names = [lock_file_name(i) for i in identities]
    assert len(set(names)) == len(names)
    for name in names:
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*\.lock", name), name
        assert len(name) < 120
    assert lock_file_name("usb-10c4-0001").startswith("usb-10c4-0001-")
    assert lock_file_name("rfc2217://bench-3:4000").startswith("rfc2217_bench-3_4000-")

    for identity in identities:  # every one gives a file inside the lock directory
        lock = BoardLock(identity, tmp_path)
        assert lock.path.parent == tmp_path
        lock.acquire(timeout=0)
        lock.release()
    assert len(list(tmp_path.iterdir())) == len(identities)

    with pytest.raises(ConfigError):
        lock_file_name("")


def test_release_in_a_forked_child_keeps_the_parents_lock(tmp_path: Path) -> None:
    lock = BoardLock(IDENTITY, tmp_path)
    lock.acquire(timeout=0)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            lock.release()
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert lock.held
    assert BoardLock(IDENTITY, tmp_path).is_locked()
    holder = lock.holder()
    assert holder is not None and holder.pid == os.getpid()  # the child did not clear our record
    lock.release()
