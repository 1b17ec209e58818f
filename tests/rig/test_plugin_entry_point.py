"""The plugin is registered by the package (a ``pytest11`` entry point): a project needs no
``conftest.py`` line, and one that has the line still works (no double registration)."""

from __future__ import annotations

import importlib.metadata

import pytest

# The ``bare_project`` fixture (tests/rig/conftest.py) builds on pytester.
pytest_plugins = ["pytester"]


def test_the_package_declares_the_entry_point() -> None:
    points = importlib.metadata.entry_points(group="pytest11")
    assert [p.value for p in points if p.name == "rig.plugin"] == ["rig.plugin"], (
        "the rig's pytest11 entry point is not installed: pip install -e . refreshes it"
    )


def test_a_project_without_conftest_gets_the_rig_options(bare_project: pytest.Pytester) -> None:
    result = bare_project.runpytest_subprocess("--help")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*--rig-board*"])
    # The check can fail: with the entry point's plugin blocked, the options are gone.
    blocked = bare_project.runpytest_subprocess("-p", "no:rig.plugin", "--help")
    assert blocked.ret == 0
    assert "--rig-board" not in blocked.stdout.str()


def test_a_project_without_conftest_gets_the_rig_fixtures(bare_project: pytest.Pytester) -> None:
    bare_project.makepyfile(
        "def test_settings(rig_session):\n    assert rig_session.settings.loop_period > 0\n"
    )
    result = bare_project.runpytest_subprocess(f"--rig-artifacts={bare_project.path / 'artifacts'}")
    result.assert_outcomes(passed=1)


def test_the_conftest_line_and_the_entry_point_together(bare_project: pytest.Pytester) -> None:
    bare_project.makeconftest('pytest_plugins = ["rig.plugin"]')
    bare_project.makepyfile(
        "def test_settings(rig_session):\n    assert rig_session.settings.loop_period > 0\n"
    )
    result = bare_project.runpytest_subprocess(f"--rig-artifacts={bare_project.path / 'artifacts'}")
    result.assert_outcomes(passed=1)
    assert "already registered" not in result.stdout.str() + result.stderr.str()
