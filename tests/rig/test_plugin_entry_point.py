"""The plugin is registered by the package (a ``pytest11`` entry point): a project needs no
``conftest.py`` line, and one that has the line still works (no double registration)."""

from __future__ import annotations

import importlib.metadata
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytest_plugins = ["pytester"]


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A pytest project with no conftest.py at all."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    for name in list(os.environ):
        if name.startswith("RIG_"):
            monkeypatch.delenv(name)
    return pytester


def test_the_package_declares_the_entry_point() -> None:
    points = importlib.metadata.entry_points(group="pytest11")
    assert [p.value for p in points if p.name == "rig.plugin"] == ["rig.plugin"], (
        "the rig's pytest11 entry point is not installed: pip install -e . refreshes it"
    )


def test_a_project_without_conftest_gets_the_rig_options(project: pytest.Pytester) -> None:
    result = project.runpytest_subprocess("--help")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*--rig-board*"])
    # The check can fail: with the entry point's plugin blocked, the options are gone.
    blocked = project.runpytest_subprocess("-p", "no:rig.plugin", "--help")
    assert blocked.ret == 0
    assert "--rig-board" not in blocked.stdout.str()


def test_a_project_without_conftest_gets_the_rig_fixtures(project: pytest.Pytester) -> None:
    project.makepyfile("def test_settings(rig_session):\n    assert rig_session.settings.loop_period > 0\n")
    result = project.runpytest_subprocess(f"--rig-artifacts={project.path / 'artifacts'}")
    result.assert_outcomes(passed=1)


def test_the_conftest_line_and_the_entry_point_together(project: pytest.Pytester) -> None:
    project.makeconftest('pytest_plugins = ["rig.plugin"]')
    project.makepyfile("def test_settings(rig_session):\n    assert rig_session.settings.loop_period > 0\n")
    result = project.runpytest_subprocess(f"--rig-artifacts={project.path / 'artifacts'}")
    result.assert_outcomes(passed=1)
    assert "already registered" not in result.stdout.str() + result.stderr.str()
