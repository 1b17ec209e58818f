"""Arguments for an inner pytest run of the rig (pytester): the repo's firmware, and artifacts
inside the inner project, where the test reads them back."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def rig_args(pytester: pytest.Pytester, *extra: str) -> list[str]:
    return [f"--rig-firmware={REPO / 'firmware'}", f"--rig-artifacts={pytester.path / 'artifacts'}", *extra]
