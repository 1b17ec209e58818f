"""The virtual board's flash lives outside the artifacts, in a folder only its user can enter.

With an external broker the flash's ``config.json`` holds the real ``RIG_BROKER_PASSWORD``, and
CI uploads the artifacts folder: the flash must never be in it, and the secrets audit must cover
everything that is (issue 17). Fast: folders only, no process.
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from rig import settings as rig_settings
from rig.board import virtual_flash
from rig.board.kinds import kind_of
from rig.board.virtual import VirtualBoard
from rig.board_choice import BUILTIN_VIRTUAL, board_lock, flash_dir
from rig.session import RigSession
from rig.shared_folder import UntrustedFolder

PASSWORD = "hunter2-broker-pw"


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "state"
    monkeypatch.setenv(rig_settings.STATE_DIR.env, str(folder))
    return folder


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_the_flash_is_outside_the_artifacts_and_private(tmp_path: Path, state: Path) -> None:
    workdir = tmp_path / "artifacts" / "session"
    workdir.mkdir(parents=True)
    flash, note = virtual_flash.prepare(workdir, "virtual")
    assert note is None
    assert flash == flash_dir(workdir, BUILTIN_VIRTUAL), "one home for where the flash is"
    assert flash.is_relative_to(state / "flash") and flash.name == "virtual"
    assert not flash.is_relative_to(tmp_path / "artifacts"), f"the flash {flash} is in the artifacts"
    for folder in (state, state / "flash", flash.parent, flash):
        assert mode(folder) == 0o700, f"{folder} is {oct(mode(folder))}, not private"
        assert os.lstat(folder).st_uid == os.geteuid()
    # Persistent: the same session folder finds the same flash, with what the last run left.
    (flash / "config.json").write_text("{}")
    assert virtual_flash.prepare(workdir, "virtual") == (flash, None)
    assert (flash / "config.json").exists()
    # One flash (and one lock) per session folder: another checkout's board is another board.
    other = tmp_path / "other" / "session"
    assert flash_dir(other, BUILTIN_VIRTUAL) != flash
    assert (
        board_lock(BUILTIN_VIRTUAL, other, "t").identity != board_lock(BUILTIN_VIRTUAL, workdir, "t").identity
    )


def test_without_a_setting_the_flash_is_in_the_users_state_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(rig_settings.STATE_DIR.env, raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert virtual_flash.state_dir() == tmp_path / "xdg" / "micropython-mqtt-rig"
    monkeypatch.setenv("XDG_STATE_HOME", "relative/state")  # ignored, as the XDG spec says
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert virtual_flash.state_dir() == tmp_path / "home" / ".local" / "state" / "micropython-mqtt-rig"


def test_a_state_folder_open_to_others_is_refused_naming_it(tmp_path: Path, state: Path) -> None:
    state.mkdir(mode=0o700)
    os.chmod(state, 0o755)
    with pytest.raises(
        UntrustedFolder, match=rf"folder {state} .*open to its group or to others.*RIG_STATE_DIR"
    ):
        virtual_flash.prepare(tmp_path, "virtual")


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a folder to another user takes root")
def test_a_state_folder_of_another_user_is_refused_naming_it(tmp_path: Path, state: Path) -> None:
    state.mkdir(mode=0o700)
    os.chown(state, 65534, 65534)
    with pytest.raises(UntrustedFolder, match=rf"folder {state} .*belongs to someone else"):
        virtual_flash.prepare(tmp_path, "virtual")


def test_a_link_in_place_of_the_state_folder_is_refused(tmp_path: Path, state: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    state.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UntrustedFolder, match="is a symlink"):
        virtual_flash.prepare(tmp_path, "virtual")


def test_an_old_flash_in_the_artifacts_is_moved_out_of_them(tmp_path: Path, state: Path) -> None:
    workdir = tmp_path / "artifacts" / "session"
    old = workdir / "flash-virtual"
    old.mkdir(parents=True)
    (old / "config.json").write_text(f'{{"broker_password": "{PASSWORD}"}}')
    with pytest.warns(
        virtual_flash.OldFlashMoved, match="moved the old flash .*flash-virtual out of the artifacts"
    ):
        transport = kind_of(BUILTIN_VIRTUAL).make_transport(BUILTIN_VIRTUAL, workdir, None, list)
    assert isinstance(transport, VirtualBoard)
    assert not old.exists(), "the old flash, with its secrets, stayed in the artifacts"
    assert PASSWORD in (transport.flash_dir / "config.json").read_text(), "the flash's content was lost"
    assert mode(transport.flash_dir) == 0o700
    # A second old flash next to a private one that exists already: removed, not merged.
    old.mkdir()
    (old / "config.json").write_text(PASSWORD)
    with pytest.warns(virtual_flash.OldFlashMoved, match="removed the old flash"):
        kind_of(BUILTIN_VIRTUAL).make_transport(BUILTIN_VIRTUAL, workdir, None, list)
    assert not old.exists()


def test_flashes_of_session_folders_that_are_gone_are_removed(tmp_path: Path, state: Path) -> None:
    gone, kept = tmp_path / "gone" / "session", tmp_path / "kept" / "session"
    for workdir in (gone, kept):
        workdir.mkdir(parents=True)
        virtual_flash.prepare(workdir, "virtual")
    (gone.parent / "session").rmdir()
    # Older than a flash another run may be making now (virtual_flash.PRUNE_AFTER_S).
    old = time.time() - virtual_flash.PRUNE_AFTER_S - 60
    for workdir in (gone, kept):
        os.utime(flash_dir(workdir, BUILTIN_VIRTUAL).parent, (old, old))
    virtual_flash.prepare(tmp_path / "third", "virtual")
    assert not flash_dir(gone, BUILTIN_VIRTUAL).exists()
    assert flash_dir(kept, BUILTIN_VIRTUAL).exists()


def test_the_runs_audit_searches_everything_under_the_artifacts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flash folder left in the artifacts (an older rig's, or any ``flash-*``) is audited like
    every other file: it is uploaded like every other file."""
    monkeypatch.delenv("RIG_SECRETS_FILE", raising=False)
    given = {"rig_board": "virtual", "rig_artifacts": "artifacts"}
    session = RigSession(rig_settings.resolve(given.get, tmp_path))
    leftover = session.dir / "flash-virtual" / "config.json"
    leftover.parent.mkdir()
    leftover.write_text(f'{{"broker_password": "{PASSWORD}"}}')
    monkeypatch.setattr(session, "secrets", lambda: {"RIG_BROKER_PASSWORD": PASSWORD})
    verdict = session.audit_secrets()
    assert not verdict.clean, "the audit skipped a folder that CI uploads"
    assert [leak.where for leak in verdict.leaks] == [str(leftover)]
