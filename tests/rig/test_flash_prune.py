"""The private flashes of session folders that are gone are pruned, but never one young enough
to be in the making by another run (rig.board.virtual_flash._prune)."""

from __future__ import annotations

import os
from pathlib import Path

from rig.board.virtual_flash import PRUNE_AFTER_S, SERVES, _prune


def flash(flashes: Path, name: str, serves: Path, age: float, now: float) -> Path:
    folder = flashes / name
    folder.mkdir(parents=True)
    (folder / SERVES).write_text(f"{serves}\n")
    os.utime(folder, (now - age, now - age))
    return folder


def test_only_an_old_flash_of_a_gone_session_folder_is_pruned(tmp_path: Path) -> None:
    now = 1_800_000_000.0
    flashes = tmp_path / "flash"
    alive = tmp_path / "alive"
    alive.mkdir()
    gone = tmp_path / "gone"
    old_gone = flash(flashes, "a", gone, PRUNE_AFTER_S + 60, now)
    young_gone = flash(flashes, "b", gone, 5, now)  # another run's, its session folder not made yet
    old_alive = flash(flashes, "c", alive, PRUNE_AFTER_S + 60, now)
    _prune(flashes, keep=tmp_path / "none", now=now)
    assert not old_gone.exists()
    assert young_gone.exists(), "a flash in the making was pruned"
    assert old_alive.exists()
