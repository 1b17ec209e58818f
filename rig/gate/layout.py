"""The gate's output folder: who may empty it, and where each attempt's run folder goes."""

from __future__ import annotations

import shutil
from pathlib import Path

from rig.errors import ConfigError

MARKER = ".rig-gate"


def prepare_out(out: Path) -> None:
    """Empty ``out`` for this gate run. Only a folder the gate wrote before (it holds the
    marker) or an empty one is emptied: ``--out .`` must never wipe a checkout."""
    if out.exists():
        if not out.is_dir():
            raise ConfigError("--out", "out", f"{out} exists and is not a directory")
        if any(out.iterdir()) and not (out / MARKER).exists():
            raise ConfigError(
                "--out",
                "out",
                f"{out} is not empty and was not written by rig gate; not emptying it "
                "(remove it or choose another folder)",
            )
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / MARKER).write_text("written by rig gate, which empties this folder at every run\n")


def run_folder(out: Path, board: str, retry: int) -> Path:
    """``OUT/NAME`` for the first attempt, ``OUT/NAME-retryN`` for a retry; a ``ConfigError``
    for a name that would put it anywhere but right inside ``out``.

    The inventory refuses such names already (``rig.inventory.loader``); this is the second
    line, because the gate writes into that folder and removes per-test folders in it: with
    ``..`` it would be the parent of the marked folder, which nobody allowed it to empty."""
    folder = out / (board if retry == 0 else f"{board}-retry{retry}")
    if folder.resolve().parent != out.resolve():
        raise ConfigError(
            "rig gate",
            "board name",
            f"{board!r} is no plain folder name: its run folder would be outside {out}",
        )
    return folder
