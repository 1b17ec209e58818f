"""The folders the rig keeps in places every user of the machine can write (the temp folder), and
the one check that they are what the rig expects before it trusts them.

Two kinds, one rule each:

- a *shared* folder (the board locks' folder): every user of the bench puts files in it. It must
  belong to the current user or to root, and when others may write it, carry the sticky bit (as
  ``/tmp`` does), so that no user can remove or replace another's files;
- a *private* folder (the broker's credentials, the network allocation lock): only the current
  user. It must belong to the current user and be closed to group and others.

The names are fixed (other runs must find them), so another user can create one of them first,
or a symlink under its name, and wait for the rig to write into it: a lock file it can hold or
replace, a password file it can read. Such a folder is refused with ``UntrustedFolder``, naming
the folder, its owner and its mode, and what to do; the rig never repairs a folder it did not
just make (a repaired folder may already hold someone else's files).

Why our own: ``tempfile.mkdtemp`` makes a safe folder, but under a random name that other runs
cannot find; and no library checks an existing folder against these two rules.
"""

from __future__ import annotations

import os
import pwd
import stat
from pathlib import Path

from rig.errors import InfrastructureError

SHARED_MODE = 0o1777
PRIVATE_MODE = 0o700
# Writable by someone other than the owner: by its group or by everyone.
_OTHERS_WRITE = stat.S_IWGRP | stat.S_IWOTH
_OTHERS_ANY = stat.S_IRWXG | stat.S_IRWXO


class UntrustedFolder(InfrastructureError):
    """A shared or private folder that someone else could have prepared: the wrong owner, the
    wrong mode, a symlink or not a folder. ``path``, ``owner`` (uid; None when there is nothing
    under that name to own) and ``mode`` (None likewise) are what the check saw."""

    def __init__(self, path: Path, owner: int | None, mode: int | None, problem: str, remedy: str) -> None:
        self.path = path
        self.owner = owner
        self.mode = mode
        self.problem = problem
        seen = (
            "" if owner is None or mode is None else f" (owner {_user(owner)}, mode {_describe_mode(mode)})"
        )
        super().__init__(f"folder {path}{seen} {problem}; {remedy}")


def shared_folder(path: Path, *, hint: str = "") -> Path:
    """``path`` as a folder every user of the machine may put files in: created with mode 1777
    when absent, else checked (``check_folder``). Returns ``path``. ``hint`` is added to the
    error's remedy (another place the caller may use, say). ``OSError`` when it cannot be made."""
    _make(path, SHARED_MODE)
    check_folder(path, private=False, hint=hint)
    return path


def private_folder(path: Path, *, hint: str = "") -> Path:
    """``path`` as a folder of the current user's alone: created with mode 0700 when absent,
    else checked (``check_folder``). Returns ``path``."""
    _make(path, PRIVATE_MODE)
    check_folder(path, private=True, hint=hint)
    return path


def check_folder(path: Path, *, private: bool, hint: str = "") -> None:
    """Raise ``UntrustedFolder`` unless ``path`` is a folder (not a symlink to one) that passes
    the rule of its kind (see the module docstring)."""
    me = os.geteuid()
    extra = f" {hint}" if hint else ""
    try:
        seen = os.lstat(path)
    except OSError as e:
        raise UntrustedFolder(
            path, None, None, f"cannot be examined: {e.strerror or e}", f"check the path{extra}"
        ) from e
    owner, mode = seen.st_uid, seen.st_mode
    remove = (
        f"see what it holds, then remove it (rm -r {path}; in a sticky folder such as /tmp only its "
        f"owner or root can) and run again{extra}"
    )
    if stat.S_ISLNK(mode):
        target = _readlink(path)
        raise UntrustedFolder(path, owner, mode, f"is a symlink (to {target}), not a folder", remove)
    if not stat.S_ISDIR(mode):
        raise UntrustedFolder(path, owner, mode, "is not a folder", remove)
    if private:
        if owner != me:
            raise UntrustedFolder(
                path, owner, mode, f"is private to you ({_user(me)}) yet belongs to someone else", remove
            )
        if mode & _OTHERS_ANY:
            raise UntrustedFolder(
                path,
                owner,
                mode,
                "is private yet open to its group or to others (someone changed its mode: the rig "
                "makes it 0700)",
                f"check who may have read or put files in it, then remove it (rm -r {path}) and run "
                f"again{extra}",
            )
        return
    if owner not in (me, 0):
        raise UntrustedFolder(
            path,
            owner,
            mode,
            "is shared by every user of this machine and must belong to "
            + ("root" if me == 0 else f"you ({_user(me)}) or root"),
            f"if nobody uses it, {remove}; or let root own it (chown root {path})",
        )
    if mode & _OTHERS_WRITE and not mode & stat.S_ISVTX:
        raise UntrustedFolder(
            path,
            owner,
            mode,
            "can be written by others but has no sticky bit, so any of them may remove or "
            "replace another's files",
            f"add the sticky bit (chmod +t {path}), as /tmp has{extra}",
        )


def _make(path: Path, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.mkdir(path, mode)
    except FileExistsError:
        return  # checked as it is: never repaired (see the module docstring)
    # The umask has stripped bits from mkdir's mode (the sticky bit and others' write, for a
    # shared folder); set it on the folder just made, which is still ours.
    os.chmod(path, mode)


def _user(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def _describe_mode(mode: int) -> str:
    return f"{stat.S_IMODE(mode):04o} {stat.filemode(mode)}"


def _readlink(path: Path) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return "?"
