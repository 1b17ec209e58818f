"""The rig's one file-lock mechanism: an ``flock`` per name, with a holder record and a bounded wait.

Its main use is one test run per board at a time, across processes and users (``BoardLock``):
the bench user, the nightly job and the release gate share the same boards. Anything else the
rig must do one process at a time on this machine takes a ``NamedLock`` of its own here (the
virtual boards' network allocation in ``rig.netns``, a private lock in a folder of root's), so
that every wait on a lock is bounded and names its holder. Each lock has a file in a directory
shared by every user of the machine (``$RIG_LOCK_DIR``, else ``/tmp/micropython-mqtt-rig-locks``),
which must be theirs or root's and sticky (``rig.shared_folder``). The lock is ``flock(LOCK_EX)`` on
that file, so the kernel drops it when the holder dies however it dies (SIGKILL included) and the
next run simply takes it.

The holder writes a record (pid, command, user, host, since, purpose) into the file so that a
waiter can say who is in the way. The record is only a message: the flock is the truth, and a
record left by a dead holder is overwritten by the next one.

Why not ``filelock`` (py-filelock), the well-kept library for this: it takes the same flock, but
it has no holder record, so a run that waited in vain could only say "timeout", never "held by
pid 4242 (rig gate, user lab, since 02:30)"; and its lock files are created with the creator's
umask, where a lock directory shared by every user of the bench needs files any of them can
open. Those two are the whole reason the bench needs a lock, so the rig keeps its own.
"""

from __future__ import annotations

import errno
import fcntl
import getpass
import hashlib
import json
import os
import re
import socket
import stat
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from rig.deadline import Deadline
from rig.errors import ConfigError, InfrastructureError, RigError
from rig.settings import LOCK_DIR
from rig.shared_folder import private_folder, shared_folder

DEFAULT_LOCK_DIR = Path(str(LOCK_DIR.default))
LOCK_DIR_ENV = LOCK_DIR.env

# A record is a few hundred bytes; the cap only protects a reader from a file someone filled by hand.
_MAX_RECORD = 64 * 1024
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_Lock = TypeVar("_Lock", bound="NamedLock")


class BoardLockError(InfrastructureError):
    """The lock itself could not be used: its directory or file cannot be created, opened or written."""


class LockBusy(BoardLockError):
    """Another holder kept the lock for the whole wait.

    ``subject`` is what the lock guards, as messages name it ("board esp32-1"); ``holder`` is
    the holder's record, or None when the record was empty or unreadable (a holder that has just
    taken the lock and not yet written it, or a file edited by hand); ``waited`` is the bound
    that expired, in seconds.
    """

    def __init__(self, subject: str, holder: Holder | None, waited: float, path: Path) -> None:
        self.subject = subject
        self.holder = holder
        self.waited = waited
        self.path = path
        if holder is None:
            who = f"another process (its holder record in {path} is empty or unreadable)"
        else:
            who = holder.describe()
        super().__init__(f"{subject} is in use by {who} — waited {waited:g}s")


class BoardBusy(LockBusy):
    """Another holder kept the board for the whole wait (see ``LockBusy``)."""

    def __init__(self, identity: str, holder: Holder | None, waited: float, path: Path) -> None:
        self.identity = identity
        super().__init__(f"board {identity}", holder, waited, path)


class AlreadyHeld(RigError):
    """``acquire`` was called on a lock object that already holds its lock: a bug in the caller."""


@dataclass(frozen=True)
class Holder:
    """Who holds a lock, as written by the holder when it took it."""

    pid: int
    command: str
    user: str
    host: str
    since: str
    purpose: str

    def describe(self) -> str:
        # The host matters only when the lock directory is shared between machines (NFS).
        where = "" if self.host == socket.gethostname() else f" on {self.host}"
        return (
            f"pid {self.pid}{where} ({self.command}, user {self.user}, since {self.since}, "
            f"purpose {self.purpose or '(none given)'})"
        )

    def to_bytes(self) -> bytes:
        return (json.dumps(asdict(self)) + "\n").encode()

    @classmethod
    def parse(cls, data: bytes) -> Holder | None:
        """The record in ``data``, or None when it is empty, truncated or not a record."""
        try:
            raw = json.loads(data.decode())
        except (UnicodeDecodeError, ValueError):
            return None
        if not isinstance(raw, dict):
            return None
        pid = raw.get("pid")
        texts = [raw.get(k) for k in ("command", "user", "host", "since", "purpose")]
        if not isinstance(pid, int) or isinstance(pid, bool) or not all(isinstance(t, str) for t in texts):
            return None
        command, user, host, since, purpose = (str(t) for t in texts)
        return cls(pid, command, user, host, since, purpose)

    @classmethod
    def of_this_process(cls, purpose: str) -> Holder:
        try:
            with open("/proc/self/cmdline", "rb") as f:
                argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
        except OSError:
            argv = []
        try:
            user = getpass.getuser()
        except (OSError, KeyError):  # a container uid with no passwd entry and no $USER
            user = str(os.getuid())
        return cls(
            pid=os.getpid(),
            command=" ".join(argv or sys.argv),
            user=user,
            host=socket.gethostname(),
            since=datetime.now().astimezone().isoformat(timespec="seconds"),
            purpose=purpose,
        )


def lock_file_name(identity: str) -> str:
    """A file name for ``identity``: readable, safe (no ``/``, no leading dot or dash), distinct per identity.

    Unsafe characters collapse to ``_`` for reading; a hash of the exact identity keeps
    ``rfc2217://h:1`` and ``rfc2217___h_1`` apart.
    """
    if not identity:
        raise ConfigError("NamedLock", "identity", "must not be empty")
    readable = _UNSAFE.sub("_", identity).strip("._-")[:80] or "board"
    digest = hashlib.sha256(identity.encode()).hexdigest()[:12]
    return f"{readable}-{digest}.lock"


def default_lock_dir() -> Path:
    return Path(LOCK_DIR.read() or DEFAULT_LOCK_DIR)


class NamedLock:
    """The exclusive right to one named thing, shared with other processes and users.

    Lifecycle: construct (no I/O), then ``acquire(timeout)`` or ``with NamedLock(...)``; do the
    work; ``release()`` (idempotent; the context manager calls it). The object may be acquired
    again after release. Acquiring while this object holds the lock raises ``AlreadyHeld``.

    Callers may rely on:

    - at most one holder per identity and lock directory at any time, counting each lock
      object as its own holder: two objects in one process exclude each other like two processes;
    - the lock ending with the holding process, whatever kills it, and not being inherited by
      programs it starts (the descriptor is close-on-exec);
    - ``acquire`` never waiting longer than its timeout, and sleeping ``poll`` between tries;
    - the lock file never being deleted, so a waiter never locks an orphaned file.

    Not thread-safe: one object belongs to one thread. A process that forks while holding keeps
    the lock until both copies close it; ``release`` in the child closes only the child's copy.
    """

    def __init__(
        self,
        identity: str,
        lock_dir: Path | None = None,
        *,
        subject: str | None = None,
        purpose: str = "",
        timeout: float = 30.0,
        private: bool = False,
    ) -> None:
        """``subject`` names what the lock guards in messages (default: the identity);
        ``purpose`` goes into the holder record; ``timeout`` is what ``with`` waits. A
        ``private`` lock is for the current user's processes only: its folder is private
        (``rig.shared_folder``) and its file 0600; else both are open to every user."""
        self.identity = identity
        self.private = private
        self.subject = subject or identity
        self.lock_dir = lock_dir if lock_dir is not None else default_lock_dir()
        self.path = self.lock_dir / lock_file_name(identity)
        self.purpose = purpose
        self.timeout = timeout
        self._fd: int | None = None
        self._owner_pid: int | None = None

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._fd is not None and self._owner_pid == os.getpid()

    def acquire(self, timeout: float, poll: float = 0.1) -> None:
        """Take the lock, retrying every ``poll`` seconds while another holder has it.

        Raises ``LockBusy`` (``BoardBusy`` for a ``BoardLock``) naming the holder when it is
        still held after ``timeout`` seconds (``timeout=0`` tries once), ``AlreadyHeld`` when
        this object holds it already, ``UntrustedFolder`` when the lock directory is someone
        else's or lacks its sticky bit (``rig.shared_folder``), ``BoardLockError`` when the
        lock directory or file cannot be used otherwise.
        """
        if timeout < 0 or poll <= 0:
            raise ValueError(f"timeout must be >= 0 and poll > 0, got timeout={timeout}, poll={poll}")
        if self.held:
            raise AlreadyHeld(f"this lock object already holds {self.subject} ({self.path})")
        self.release()  # after a fork, closes the copy of the parent's descriptor (and only that)
        deadline = Deadline(timeout)
        self._ensure_dir()
        fd = self._open_for_locking()
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    pass
                if deadline.expired:
                    raise self._busy(self._read_record(), timeout)
                time.sleep(deadline.remaining_or(poll))
            self._write_record(fd)
        except BaseException:
            os.close(fd)  # closing drops the flock too, if we got it
            raise
        self._fd = fd
        self._owner_pid = os.getpid()

    def _busy(self, holder: Holder | None, waited: float) -> LockBusy:
        return LockBusy(self.subject, holder, waited, self.path)

    def release(self) -> None:
        """Give the lock back. Idempotent; the lock file stays (see the class docstring)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if self._owner_pid == os.getpid():
                # Clear the record first, while still holding: after the unlock the file belongs
                # to the next holder, and truncating then would wipe its record.
                try:
                    os.ftruncate(fd, 0)
                finally:
                    fcntl.flock(fd, fcntl.LOCK_UN)
            # In a forked child the descriptor shares the parent's lock: LOCK_UN would free the
            # parent's lock, so only our copy is closed.
        finally:
            os.close(fd)

    def holder(self) -> Holder | None:
        """Who holds the lock now (this object included), without keeping it.

        None when it is free, or held but its record is empty or unreadable. A free lock's file
        may still carry the record of a dead holder; that is not reported.
        """
        if not self.is_locked():
            return None
        return self._read_record()

    def is_locked(self) -> bool:
        """True when someone holds the lock: another process, another lock object in this
        process, or this very object ("held by us").

        It probes with ``LOCK_EX | LOCK_NB`` on a descriptor of its own and unlocks at once if the
        probe succeeded. flock locks belong to open file descriptions, so the probe neither
        disturbs a lock this process holds nor is granted because of it. A waiter whose try
        falls inside the probe's instant simply retries on its next poll.
        """
        try:
            fd = self._open(os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(fd, fcntl.LOCK_UN)
            return False
        finally:
            os.close(fd)

    def __enter__(self: _Lock) -> _Lock:
        self.acquire(self.timeout)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.identity!r}, path={str(self.path)!r}, held={self.held})"

    # -- files ----------------------------------------------------------------------------------

    def _ensure_dir(self) -> None:
        # A folder someone else made under the fixed name is refused (UntrustedFolder): in a
        # folder they own, or one without the sticky bit, they could remove a held lock's file
        # and let a second holder in.
        d = self.lock_dir
        try:
            if self.private:
                private_folder(d)
            else:
                shared_folder(d, hint=f"(or set ${LOCK_DIR_ENV} to another folder)")
        except OSError as e:
            raise BoardLockError(f"cannot create lock directory {d}: {e}") from e

    def _open(self, flags: int) -> int:
        """Open the lock file without following a symlink or blocking on a planted FIFO, and
        refuse what another user could have planted under its name: anything but a regular
        file; a hard link, whose other name may be a file the holder would truncate to write its
        record (where fs.protected_hardlinks is off, any file root can write); in a private
        lock's folder, a file that is not the current user's."""
        try:
            fd = os.open(self.path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except (FileNotFoundError, FileExistsError):
            raise  # absent, or created by another holder meanwhile: _open_for_locking tries again
        except OSError as e:
            hint = " (a symlink?)" if e.errno == errno.ELOOP else ""
            raise BoardLockError(f"cannot open lock file {self.path}{hint}: {e}") from e
        seen = os.fstat(fd)
        problem = None
        if not stat.S_ISREG(seen.st_mode):
            problem = "is not a regular file"
        elif seen.st_nlink > 1:
            problem = f"has {seen.st_nlink} names (a hard link to another file?)"
        elif self.private and seen.st_uid != os.geteuid():
            problem = f"belongs to uid {seen.st_uid}, yet its folder is private to uid {os.geteuid()}"
        if problem is not None:
            os.close(fd)
            raise BoardLockError(f"lock file {self.path} {problem}: remove it once you have seen what it is")
        return fd

    def _open_for_locking(self) -> int:
        # Open an existing file without O_CREAT: with fs.protected_regular (the default on
        # systemd machines) O_CREAT on another user's file in a sticky world-writable directory
        # fails with EACCES even when the file is 0666. Create only when absent, exclusively.
        for _ in range(5):  # a race with a manual delete; the rig itself never deletes
            try:
                return self._open(os.O_RDWR)
            except FileNotFoundError:
                pass
            try:
                fd = self._open(os.O_RDWR | os.O_CREAT | os.O_EXCL)
            except FileExistsError:
                continue
            except FileNotFoundError as e:  # the directory vanished under us
                raise BoardLockError(f"cannot create lock file {self.path}: {e}") from e
            try:
                # Another user must be able to take over after we die; the umask stripped 0o066.
                os.fchmod(fd, 0o600 if self.private else 0o666)
            except OSError as e:
                os.close(fd)
                raise BoardLockError(f"cannot make lock file {self.path} shareable: {e}") from e
            return fd
        raise BoardLockError(f"lock file {self.path} keeps appearing and disappearing")

    def _write_record(self, fd: int) -> None:
        data = Holder.of_this_process(self.purpose).to_bytes()
        try:
            os.ftruncate(fd, 0)
            # One write: a reader catching the instant between truncate and write sees an empty
            # record, which messages report as unreadable rather than as free.
            if os.pwrite(fd, data, 0) != len(data):
                raise OSError(errno.ENOSPC, "short write")
        except OSError as e:
            raise BoardLockError(f"cannot write holder record to {self.path}: {e}") from e

    def _read_record(self) -> Holder | None:
        try:
            fd = self._open(os.O_RDONLY)
        except (FileNotFoundError, BoardLockError):
            return None  # only used for messages: an unreadable record is reported as such
        try:
            return Holder.parse(os.pread(fd, _MAX_RECORD, 0))
        except OSError:
            return None
        finally:
            os.close(fd)


class BoardLock(NamedLock):
    """The exclusive right to use one board (see ``NamedLock``): messages name it "board
    IDENTITY", and a wait that expires raises ``BoardBusy``."""

    def __init__(
        self,
        identity: str,
        lock_dir: Path | None = None,
        *,
        purpose: str = "",
        timeout: float = 30.0,
    ) -> None:
        super().__init__(identity, lock_dir, subject=f"board {identity}", purpose=purpose, timeout=timeout)

    def _busy(self, holder: Holder | None, waited: float) -> LockBusy:
        return BoardBusy(self.identity, holder, waited, self.path)
