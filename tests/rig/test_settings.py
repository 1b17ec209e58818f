"""The settings table (``rig.settings``): one list of every option and variable, one default each,
its documentation generated from it, and every reader going through it. Fast: no subprocess."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rig import settings
from rig.board import labgrid
from rig.errors import ConfigError
from rig.settings import OPTIONS, VARIABLES, Origin, Use, environment_names, markdown, option, resolve

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "settings.md"
# The MicroPython side of the virtual board cannot import the table; it reads what the supervisor
# hands it, under the table's names.
ON_THE_BOARD = REPO / "rig" / "board" / "mpy"
# Names of the RIG_ form that are not variables the rig reads: a placeholder in prose, a constant
# of the firmware contract, and the inventory's own example of a secret it refers to.
NOT_VARIABLES = {"RIG_NAME", "RIG_VALUES", "RIG_WIFI_PASSWORD"}
# Left to its owner (rig up is being rewired now): this line repeats what common.add_board_argument
# already does from the table (RIG_BOARD, else auto) and is to go; then drop it from here.
PENDING: set[str] = set()


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in environment_names():
        monkeypatch.delenv(name, raising=False)


def rig_sources() -> list[Path]:
    return sorted(p for p in (REPO / "rig").rglob("*.py") if "__pycache__" not in p.parts)


def test_docs_settings_md_is_generated_from_the_table() -> None:
    assert DOC.read_text() == markdown(), (
        "docs/settings.md is out of date with rig/settings.py: "
        "run python -m rig.settings --markdown > docs/settings.md"
    )


def test_the_page_names_every_option_and_variable_with_its_default() -> None:
    page = markdown()
    for entry in OPTIONS:
        row = next(line for line in page.splitlines() if line.startswith(f"| `{entry.flag}` "))
        assert f"`{entry.env}`" in row
        assert (f"`{entry.default}`" if entry.default is not None else "unset") in row
    for variable in VARIABLES:
        assert f"| `{variable.env}` |" in page


def test_the_markdown_command_prints_the_page(capsys: pytest.CaptureFixture[str]) -> None:
    assert settings.main(["--markdown"]) == 0
    assert capsys.readouterr().out == markdown()
    assert settings.main([]) == 0
    assert capsys.readouterr().out.split() == environment_names()


def test_every_rig_variable_the_code_names_is_in_the_table() -> None:
    """One list: a RIG_* name anywhere in rig/ (code, docstring or message) is declared."""
    declared = set(environment_names())
    named: dict[str, list[str]] = {}
    for path in rig_sources():
        for name in re.findall(r"\bRIG_[A-Z][A-Z0-9_]*\b", path.read_text()):
            named.setdefault(name, []).append(str(path.relative_to(REPO)))
    undeclared = {name: files for name, files in named.items() if name not in declared | NOT_VARIABLES}
    assert not undeclared, f"RIG_* variables not in rig/settings.py: {undeclared}"


def test_only_the_table_spells_a_variable_name_in_code() -> None:
    """Readers take the name from the table (``LOCK_DIR.env``), so that no module keeps a second
    name or default. Only the board's own MicroPython code spells them."""
    spelled = []
    for path in rig_sources():
        if path == REPO / "rig" / "settings.py" or ON_THE_BOARD in path.parents:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            where = f"{path.relative_to(REPO)}: {line.strip()}"
            if re.search(r"""["'](RIG_[A-Z0-9_]+|LG_COORDINATOR)["']""", line) and where not in PENDING:
                spelled.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert not spelled, "variable names spelled outside rig/settings.py:\n" + "\n".join(spelled)


def test_names_are_unique_and_follow_the_prefix() -> None:
    names = environment_names()
    assert len(names) == len(set(names))
    for entry in OPTIONS:
        assert entry.flag == f"--rig-{entry.name}" and entry.env.startswith("RIG_")
    secrets = {v.env for v in VARIABLES if v.use is Use.SECRET}
    assert "RIG_BROKER_PASSWORD" in secrets
    assert not any(
        entry.cli and "PASSWORD" in entry.env for entry in OPTIONS
    )  # secrets never on a command line


def test_one_lock_timeout_for_the_plugin_the_cli_and_labgrid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rig.cli import build_parser

    default = float(option("lock-timeout").default or "")
    assert resolve(lambda dest: None, tmp_path).lock_timeout == default
    assert build_parser().parse_args(["list"]).lock_timeout == default
    assert labgrid.default_wait() == default
    monkeypatch.setenv("RIG_LOCK_TIMEOUT", "3")
    assert labgrid.default_wait() == 3.0
    monkeypatch.setenv("RIG_LOCK_TIMEOUT", "-1")
    with pytest.raises(ConfigError, match=r"\$RIG_LOCK_TIMEOUT: lock-timeout: must be 0 or more"):
        labgrid.default_wait()


def test_environment_only_readers_take_the_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rig.deploy.cache import default_cache_dir
    from rig.lock import default_lock_dir
    from rig.netns import unavailable

    assert default_lock_dir() == Path(str(settings.LOCK_DIR.default))
    monkeypatch.setenv("RIG_LOCK_DIR", str(tmp_path / "locks"))
    assert default_lock_dir() == tmp_path / "locks"
    monkeypatch.setenv("RIG_CACHE_DIR", str(tmp_path / "cache"))
    assert default_cache_dir() == tmp_path / "cache" / "deps"
    monkeypatch.setenv("RIG_VIRTUAL_NETNS", "off")
    assert "RIG_VIRTUAL_NETNS is off" in (unavailable() or "")


def test_a_blank_variable_counts_as_unset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RIG_BOARD", "  ")
    monkeypatch.setenv("RIG_LOCK_DIR", "")
    s = resolve(lambda dest: None, tmp_path)
    assert s.board == "auto" and s.origins is not None and s.origins["board"].origin is Origin.DEFAULT
    assert settings.LOCK_DIR.read() == settings.LOCK_DIR.default


@pytest.mark.parametrize(
    ("env", "value", "message"),
    [
        ("RIG_LOCK_TIMEOUT", "-0.5", r"\$RIG_LOCK_TIMEOUT: lock-timeout: must be 0 or more, got '-0.5'"),
        ("RIG_TIMEOUT", "0", r"\$RIG_TIMEOUT: timeout: must be greater than 0"),
        ("RIG_LOOP_PERIOD", "nan", r"\$RIG_LOOP_PERIOD: loop-period: must be greater than 0"),
        ("RIG_SOAK_MESSAGES", "500", r"\$RIG_SOAK_MESSAGES: soak-messages: at least 1000, got '500'"),
        ("RIG_SOAK_MESSAGES", "many", r"soak-messages: expected a whole number, got 'many'"),
        ("RIG_OFFLINE", "perhaps", r"\$RIG_OFFLINE: offline: expected 1 or 0, got 'perhaps'"),
        ("RIG_BROKER", "hivemq", r"broker: expected auto, mosquitto, amqtt or external, got 'hivemq'"),
        ("RIG_FIRMWARE_MODE", "fast", r"firmware-mode: expected reference or responsive"),
    ],
)
def test_a_bad_value_names_its_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: str, value: str, message: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError, match=message):
        resolve(lambda dest: None, tmp_path)


def test_values_and_where_they_came_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RIG_SOAK_MESSAGES", "12000")
    monkeypatch.setenv("RIG_BROKER_INTERFACE", "eth1")
    given = {"rig_broker_interface": "wg0", "rig_offline": "1"}
    s = resolve(lambda dest: given.get(dest), tmp_path)
    assert (s.soak_messages, s.broker_interface, s.offline) == (12000, "wg0", True)
    assert s.source("broker-interface") == "--rig-broker-interface"
    assert s.source("soak-messages") == "$RIG_SOAK_MESSAGES"
    assert s.source("firmware") == "--rig-firmware (default)"
