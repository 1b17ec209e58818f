"""The gate's output folder: a run folder is always right inside it, whatever a board is called.

The inventory refuses names like ``..`` (``test_inventory``); these cases make the board spec
directly, as a bug or another loader could, to prove that the gate's own check holds too.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rig import gate
from rig.errors import ConfigError
from rig.gate.layout import run_folder
from rig.inventory import BoardSpec
from tests.rig.gate_inventory import write_gate_inventory


@pytest.mark.parametrize("name", [".", "..", "../elsewhere", "a/b", "/tmp/x"])
def test_a_run_folder_outside_the_output_folder_is_refused(tmp_path: Path, name: str) -> None:
    out = tmp_path / "gate"
    with pytest.raises(ConfigError, match="no plain folder name") as refused:
        run_folder(out, name, 0)
    assert repr(name) in str(refused.value)


def test_a_plain_name_and_its_retry_sit_right_inside(tmp_path: Path) -> None:
    out = tmp_path / "gate"
    assert run_folder(out, "esp-1.a", 0) == out / "esp-1.a"
    assert run_folder(out, "esp-1.a", 1) == out / "esp-1.a-retry1"


def test_the_gate_refuses_a_dot_dot_board_before_it_writes_anything(tmp_path: Path) -> None:
    out = tmp_path / "work" / "gate"
    out.mkdir(parents=True)
    (out / gate.MARKER).write_text("")
    precious = tmp_path / "work" / "precious.txt"
    precious.write_text("kept")
    firmware = tmp_path / "fw"
    firmware.mkdir()
    config = gate.GateConfig(
        firmware=firmware, inventory=write_gate_inventory(tmp_path), suite=tmp_path, out=out
    )
    planned = [gate.PlannedBoard(BoardSpec(name="..", kind="virtual"), present=True)]
    with pytest.raises(ConfigError, match=re.escape("'..' is no plain folder name")):
        gate.run_gate(config, planned)
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == ["gate", "precious.txt"]
    assert (out / gate.MARKER).exists()  # not even emptied
