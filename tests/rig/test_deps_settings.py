"""The rig's options for firmware dependencies (``--rig-deps-index``), and where a value came from
told by a typed origin, not by reading the label's text."""

from __future__ import annotations

from pathlib import Path

import pytest

from rig.settings import OPTIONS, resolve


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for option in OPTIONS:
        monkeypatch.delenv(option.env, raising=False)


def test_deps_index_from_the_command_line_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert resolve(lambda dest: None, tmp_path).deps_index is None
    flag = next(o for o in OPTIONS if o.name == "deps-index")
    assert (flag.flag, flag.env, flag.dest) == ("--rig-deps-index", "RIG_DEPS_INDEX", "rig_deps_index")
    monkeypatch.setenv("RIG_DEPS_INDEX", "mirror")
    assert resolve(lambda dest: None, tmp_path).deps_index == tmp_path / "mirror"
    given = {"rig_deps_index": str(tmp_path / "other")}
    assert resolve(lambda dest: given.get(dest), tmp_path).deps_index == tmp_path / "other"


@pytest.mark.parametrize(
    ("cli_value", "env_value", "given"),
    [
        (None, None, False),
        ("boards.yaml", None, True),  # the default's own value, but named: it must exist
        (None, "bench.yaml", True),
    ],
)
def test_inventory_given_is_told_by_origin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli_value: str | None, env_value: str | None, given: bool
) -> None:
    if env_value is not None:
        monkeypatch.setenv("RIG_INVENTORY", env_value)
    values = {} if cli_value is None else {"rig_inventory": cli_value}
    assert resolve(lambda dest: values.get(dest), tmp_path).inventory_given is given
