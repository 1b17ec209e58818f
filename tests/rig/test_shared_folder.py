"""Shared and private folders (rig.shared_folder), and the rig's folders that use them: the board
locks' folder and the broker credentials' folder. Another user is faked by chown to a uid that
is not ours (the tests run as root) and by chmod."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from rig.broker import credentials_file
from rig.lock import BoardLock
from rig.shared_folder import UntrustedFolder, check_folder, private_folder, shared_folder

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="faking another owner needs root (chown)")

SOMEONE_ELSE = 1000 if os.geteuid() != 1000 else 1001


def mode_of(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def planted(path: Path, mode: int, owner: int = 0) -> Path:
    """A folder someone made before the rig came: ``owner``'s, with ``mode``."""
    path.mkdir()
    os.chmod(path, mode)
    os.chown(path, owner, -1)
    return path


# -- the check itself ------------------------------------------------------------------------


def test_a_new_shared_folder_is_sticky_and_open_to_all_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        shared_folder(tmp_path / "a" / "shared")
    finally:
        os.umask(old)
    assert mode_of(tmp_path / "a" / "shared") == 0o1777


def test_a_new_private_folder_is_0700(tmp_path: Path) -> None:
    private_folder(tmp_path / "private")
    assert mode_of(tmp_path / "private") == 0o700


@pytest.mark.parametrize("mode", [0o1777, 0o755, 0o700, 0o1770])
def test_a_shared_folder_of_root_with_a_safe_mode_is_trusted(tmp_path: Path, mode: int) -> None:
    shared_folder(planted(tmp_path / "shared", mode))
    assert mode_of(tmp_path / "shared") == mode  # never changed


def test_a_shared_folder_of_someone_else_is_refused_naming_owner_and_mode(tmp_path: Path) -> None:
    folder = planted(tmp_path / "shared", 0o1777, SOMEONE_ELSE)
    with pytest.raises(UntrustedFolder) as refused:
        shared_folder(folder, hint="(or set $X)")
    message = str(refused.value)
    assert message.startswith(f"folder {folder} (owner ")
    assert f"(uid {SOMEONE_ELSE}), mode 1777 drwxrwxrwt)" in message
    assert "must belong to root;" in message
    assert f"rm -r {folder}" in message and f"chown root {folder}" in message and "(or set $X)" in message
    assert (refused.value.path, refused.value.owner) == (folder, SOMEONE_ELSE)


@pytest.mark.parametrize("mode", [0o777, 0o775, 0o757])
def test_a_shared_folder_others_can_write_needs_the_sticky_bit(tmp_path: Path, mode: int) -> None:
    folder = planted(tmp_path / "shared", mode)
    with pytest.raises(UntrustedFolder, match=rf"no sticky bit.*chmod \+t {folder}"):
        shared_folder(folder)
    assert mode_of(folder) == mode  # refused, not repaired


def test_a_private_folder_of_someone_else_is_refused(tmp_path: Path) -> None:
    folder = planted(tmp_path / "private", 0o700, SOMEONE_ELSE)
    with pytest.raises(
        UntrustedFolder, match=rf"\(uid {SOMEONE_ELSE}\).*is private to you \(root \(uid 0\)\) yet"
    ):
        private_folder(folder)


@pytest.mark.parametrize("mode", [0o750, 0o705, 0o710, 0o1777])
def test_a_private_folder_open_to_others_is_refused_not_repaired(tmp_path: Path, mode: int) -> None:
    folder = planted(tmp_path / "private", mode)
    with pytest.raises(UntrustedFolder, match=r"is private yet open to its group or to others"):
        private_folder(folder)
    assert mode_of(folder) == mode


@pytest.mark.parametrize("private", [False, True])
def test_a_symlink_to_a_good_folder_is_refused(tmp_path: Path, private: bool) -> None:
    (tmp_path / "real").mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(UntrustedFolder, match=rf"is a symlink \(to {tmp_path / 'real'}\), not a folder"):
        (private_folder if private else shared_folder)(tmp_path / "link")


def test_a_file_is_not_a_folder(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(UntrustedFolder, match="is not a folder"):
        check_folder(tmp_path / "file", private=False)


# -- the rig's folders -----------------------------------------------------------------------


def test_board_locks_are_not_taken_in_a_lock_folder_of_someone_else(tmp_path: Path) -> None:
    # Its owner could remove a held lock's file, and a second run would take the board too.
    folder = planted(tmp_path / "locks", 0o1777, SOMEONE_ELSE)
    lock = BoardLock("esp32-1", folder)
    with pytest.raises(UntrustedFolder, match=r"\$RIG_LOCK_DIR"):
        lock.acquire(timeout=0)
    assert not lock.held and list(folder.iterdir()) == []


def test_board_locks_are_not_taken_in_a_lock_folder_without_sticky_bit(tmp_path: Path) -> None:
    folder = planted(tmp_path / "locks", 0o777)
    with pytest.raises(UntrustedFolder, match="no sticky bit"):
        BoardLock("esp32-1", folder).acquire(timeout=0)
    assert list(folder.iterdir()) == []


@pytest.fixture
def credentials_base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    return tmp_path


def test_the_credentials_folder_is_made_private(credentials_base: Path) -> None:
    folder = credentials_file.private_folder()
    assert folder == credentials_base / f"micropython-mqtt-rig-{os.getuid()}"
    assert mode_of(folder) == 0o700 and os.lstat(folder).st_uid == os.geteuid()


@pytest.mark.parametrize(
    "prepare",
    [
        lambda p: planted(p, 0o700, SOMEONE_ELSE),  # made first by another user, to read the passwords
        lambda p: planted(p, 0o755),  # opened by someone to all
        lambda p: p.symlink_to(planted(p.with_name("elsewhere"), 0o700)),
    ],
    ids=["someone-elses", "readable-by-all", "symlink"],
)
def test_the_credentials_folder_is_refused_when_not_ours_alone(
    credentials_base: Path, prepare: Callable[[Path], object]
) -> None:
    folder = credentials_base / f"micropython-mqtt-rig-{os.getuid()}"
    prepare(folder)
    with pytest.raises(UntrustedFolder, match=rf"^folder {folder} "):
        credentials_file.private_folder()
    assert list(folder.iterdir()) == []
