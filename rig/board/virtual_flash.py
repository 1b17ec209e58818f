"""Where a virtual board keeps its flash: a private folder of the user's, outside the artifacts.

The flash is the board's ``/``. With an external broker, its ``config.json`` holds the real
``RIG_BROKER_PASSWORD`` (and ``RIG_WIFI_PASSWORD`` when set), and CI uploads the artifacts
folder, so the flash must never be in it. It lives in

    $RIG_STATE_DIR/flash/<hash of the session folder>/<board>
    (unset: $XDG_STATE_HOME/micropython-mqtt-rig, else ~/.local/state/micropython-mqtt-rig)

Each part of the path from the state folder down is the user's alone (mode 0700, made so or
checked by ``rig.shared_folder.private_folder``: a folder of someone else's, or one open to
others, is refused, naming it). The flash persists between runs, as a board's flash does: deploy
sends only what changed. The hash keys it by the session folder it serves
(``artifacts/session``), so two checkouts, or two
``--rig-artifacts`` folders, each have a flash of their own, and a board's lock stays one per
flash (``VirtualKind.lock_identity``). Each hash folder records the session folder it serves;
a flash whose session folder is gone is removed when the next one is made, so that test runs in
temporary folders do not pile up flashes.

A flash that an older rig kept in the session folder itself (``flash-<board>``) is moved here, or
removed if the private one already exists, so that no secret stays behind in the artifacts.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path

from rig.settings import STATE_DIR
from rig.shared_folder import PRIVATE_MODE, private_folder

APP = "micropython-mqtt-rig"
# The session folder a hash folder serves, written when it is made.
SERVES = "serves"
# A flash younger than this is never pruned: another run may be making it right now, its session
# folder not made yet (seen: a run pruned a group board's flash between its two folders, and the
# board's flash came back 0755, refused as tampered with, under four runs at once).
PRUNE_AFTER_S = 600.0
_HINT = f"(or set {STATE_DIR.env} to a folder of your own)"


class OldFlashMoved(UserWarning):
    """A flash an older rig kept in the artifacts was moved out of them (or removed)."""


def state_dir() -> Path:
    """``$RIG_STATE_DIR``, else ``$XDG_STATE_HOME/micropython-mqtt-rig``, else
    ``~/.local/state/micropython-mqtt-rig``. Not created here."""
    given = STATE_DIR.read()
    if given:
        return Path(given).expanduser().absolute()
    xdg = os.environ.get("XDG_STATE_HOME")
    # The XDG spec says to ignore a relative $XDG_STATE_HOME.
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "state"
    return base / APP


def legacy_flash_dir(workdir: Path, name: str) -> Path:
    """Where the rig kept a virtual board's flash before: inside the session folder."""
    return workdir / f"flash-{name}"


def flash_dir(workdir: Path, name: str) -> Path:
    """The flash of board ``name`` for the session folder ``workdir``. Pure: creates nothing."""
    return state_dir() / "flash" / _key(workdir) / name


def _key(workdir: Path) -> str:
    return hashlib.sha256(str(workdir.absolute().resolve()).encode()).hexdigest()[:16]


def prepare(workdir: Path, name: str) -> tuple[Path, str | None]:
    """Make the private flash of ``name`` for ``workdir`` (see the module docstring) and return
    it, with a note when an old flash was found in the session folder (moved or removed).
    Raises ``UntrustedFolder`` (``rig.shared_folder``) naming the folder when one of its parts
    is not the user's alone."""
    flash = flash_dir(workdir, name)
    root = state_dir()
    for folder in (root, root / "flash"):
        private_folder(folder, hint=_HINT)
    _prune(root / "flash", keep=flash.parent)
    private_folder(flash.parent, hint=_HINT)
    serves = flash.parent / SERVES
    if not serves.exists():
        serves.write_text(str(workdir.absolute().resolve()) + "\n", encoding="utf-8")
    note = _take_over_legacy(legacy_flash_dir(workdir, name), flash)
    if note is not None and note.startswith("moved"):
        os.chmod(flash, PRIVATE_MODE)  # the old flash was made under the shell's umask; ours now
    private_folder(flash, hint=_HINT)
    return flash, note


def _take_over_legacy(old: Path, flash: Path) -> str | None:
    if not old.is_dir() or old.is_symlink():
        return None
    if flash.exists():
        shutil.rmtree(old)
        return f"removed the old flash {old} (it may have held secrets); the board's flash is {flash}"
    shutil.move(str(old), str(flash))
    return f"moved the old flash {old} out of the artifacts to {flash}"


def _prune(flashes: Path, keep: Path, now: float | None = None) -> None:
    """Remove the flashes whose session folder no longer exists, once ``PRUNE_AFTER_S`` old."""
    now = time.time() if now is None else now
    for folder in flashes.iterdir():
        if folder == keep or not folder.is_dir() or folder.is_symlink():
            continue
        try:
            if now - folder.stat().st_mtime < PRUNE_AFTER_S:
                continue  # maybe being made by another run: its session folder may come next
        except OSError:
            continue
        try:
            serves = Path((folder / SERVES).read_text(encoding="utf-8").strip())
        except (OSError, UnicodeDecodeError):
            continue  # being made right now, or not ours to judge
        if serves.is_absolute() and not serves.exists():
            shutil.rmtree(folder, ignore_errors=True)
