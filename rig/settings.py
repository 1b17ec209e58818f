"""Every setting of the rig, and every environment variable it reads: one table, one default each.

Two kinds of entries:

- ``Option``: a setting a person chooses per run. The pytest plugin takes it as ``--rig-NAME``,
  the ``rig`` command line as the flag ``cli`` names (``common.table_argument`` builds the
  argparse argument from the entry), and both fall back to ``$RIG_NAME``, then to ``default``.
- ``Variable``: read from the environment only: a machine-wide place (``$RIG_LOCK_DIR``), an
  escape hatch (``$RIG_VIRTUAL_NETNS``), a secret that must never be on a command line
  (``$RIG_BROKER_PASSWORD``), or an internal hand-over between the rig's own processes.

A module that needs one of them reads it here (``option("lock-timeout").read()``,
``LOCK_DIR.read()``), never ``os.environ`` under a name of its own. ``docs/settings.md`` is
generated from this table (``python -m rig.settings --markdown``); a test fails when the two
disagree.
"""

from __future__ import annotations

import argparse
import enum
import math
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from rig.errors import ConfigError


def _environ(environ: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if environ is None else environ


def _given(environ: Mapping[str, str] | None, name: str) -> str | None:
    # A blank variable (``RIG_BOARD=`` in a CI file) means "not given", as an unset one.
    value = _environ(environ).get(name, "").strip()
    return value or None


@dataclass(frozen=True)
class Option:
    """``--rig-NAME`` for pytest, ``cli`` for the ``rig`` command, else ``$RIG_NAME``, else
    ``default``."""

    name: str
    default: str | None
    help: str
    # A switch: the flag alone means "1" (``--rig-tls``); ``--rig-tls=0`` still turns it off.
    switch: bool = False
    # The ``rig`` command line's argument for this setting, if it has one: a flag, or a
    # positional argument in capitals (``BOARD``). Which commands take it is in ``commands``.
    cli: str | None = None
    commands: str = ""

    @property
    def flag(self) -> str:
        return f"--rig-{self.name}"

    @property
    def env(self) -> str:
        return "RIG_" + self.name.upper().replace("-", "_")

    @property
    def dest(self) -> str:
        return "rig_" + self.name.replace("-", "_")

    def from_environment(self, environ: Mapping[str, str] | None = None) -> str | None:
        """``$RIG_NAME`` when set and not blank."""
        return _given(environ, self.env)

    def read(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The value for a reader that has no command line: the variable, else the default."""
        given = self.from_environment(environ)
        return given if given is not None else self.default


class Use(enum.Enum):
    """What an environment-only variable is for."""

    SETTING = "setting"
    SECRET = "secret"  # never logged, never on a command line
    INTERNAL = "internal"  # set by the rig for a process it starts; not for people to set


@dataclass(frozen=True)
class Variable:
    """An environment variable that is not an option: see the module docstring."""

    env: str
    default: str | None
    help: str
    use: Use = Use.SETTING
    # The module that reads it: the one place to look for what it does.
    reader: str = ""

    def read(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The variable when set and not blank, else the default."""
        given = _given(environ, self.env)
        return given if given is not None else self.default


REFERENCE_LOOP_PERIOD = 1.0
FIRMWARE_MODES = ("reference", "responsive")
BROKERS = ("auto", "mosquitto", "amqtt", "external")
# A soak test shorter than this says nothing about a leak (see rig.fixtures.health).
SOAK_MINIMUM = 1000
_FLAG_VALUES = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}

OPTIONS = (
    Option(
        "board",
        "auto",
        "board to test: a name from the inventory, or auto (the one USB board present, else virtual); "
        "or a set to take the first free board of, A,B or tag:NAME (each pytest-xdist worker takes its own)",
        cli="BOARD",
        commands="deploy, monitor, exec, up; one board, not a set",
    ),
    Option(
        "inventory",
        "boards.yaml",
        "the bench inventory; a missing file is an empty bench (the built-in virtual board) "
        "unless it was named",
        cli="--inventory",
        commands="every command",
    ),
    Option(
        "lock-timeout",
        "60",
        "how long (s) to wait for a board another run is using (a labgrid place too)",
        cli="--lock-timeout",
        commands="every command",
    ),
    Option(
        "broker",
        "auto",
        "broker: auto (mosquitto if installed, else amqtt), mosquitto, amqtt or external",
        cli="--broker",
        commands="gate; up and broker, which run their own (external: auto)",
    ),
    Option(
        "broker-url",
        None,
        "external broker as HOST:PORT[,WS_PORT]; implies --rig-broker=external (rig deploy: the broker "
        "the board is given)",
    ),
    Option(
        "broker-interface",
        None,
        "the network interface whose address a board on the network is given as the broker's "
        "(broker_host: auto); unset: the interface of the default route",
        cli="--broker-interface",
        commands="deploy",
    ),
    Option("artifacts", "artifacts", "directory for each test's serial log and MQTT trace"),
    Option(
        "firmware", "firmware", "firmware tree to deploy", cli="--firmware", commands="deploy, deps, gate, up"
    ),
    Option(
        "release",
        None,
        "a release bundle (its folder or .tar, as rig release build makes it) to deploy instead of "
        "the firmware tree: exactly its files, checked on the board by hash, refused on a board whose "
        "runtime it is not built for",
        cli="--release",
        commands="gate",
    ),
    Option("loop-period", "0.1", "firmware loop period (s) for tests not marked reference_period"),
    Option("firmware-mode", "reference", "firmware loop: reference (sleep, then check) or responsive (poll)"),
    Option(
        "micropython",
        None,
        "the unix port executable for the virtual board (unset: found on PATH or in the environment)",
        cli="--micropython",
        commands="deploy, monitor, exec, up",
    ),
    Option(
        "deps-cache",
        None,
        "firmware dependency cache (unset: $RIG_CACHE_DIR/deps, else ~/.cache/micropython-mqtt-rig/deps)",
        cli="--deps-cache",
        commands="deploy, deps, up",
    ),
    Option(
        "deps-index",
        None,
        "firmware dependency index: a local mip v2 index directory, as rig deps export writes",
        cli="--deps-index",
        commands="deploy, deps, up",
    ),
    Option(
        "offline",
        "0",
        "1 to take firmware dependencies from the cache and the local index only",
        switch=True,
        cli="--offline",
        commands="deploy, deps, up",
    ),
    Option(
        "tls",
        "0",
        "the board connects to the embedded broker over TLS (a CA and a server certificate made for the run)",
        switch=True,
    ),
    Option(
        "timeout",
        "10",
        "bound (s) of each wait on the board or the broker",
        cli="--timeout",
        commands="up, doctor",
    ),
    # Echoes a soak test circulates by default: enough for a drift to show, few enough to take
    # seconds on the virtual board. The nightly job asks for more. Not fewer than 3,000: the
    # firmware's lists keep the capacity of the largest burst they held, so a burst larger than any
    # before is a one-off growth of up to ~3 KB (seen once on amqtt mid-soak: -3.6 B/message over
    # 1,000 echoes, then flat); over 3,000 it weighs 1 B/message, under the 2 B/message bound, while
    # a leak of 2 B/message loses 6 KB.
    Option(
        "soak-messages",
        "3000",
        f"echoes a soak test circulates (at least {SOAK_MINIMUM}; the nightly job asks for more)",
    ),
    Option(
        "no-unexpected-skips",
        None,
        "1 fails the run on a skip that is not expected (rig.skip_policy); unset: on where $CI is set",
        switch=True,
    ),
    Option(
        "quarantine",
        None,
        "the quarantine file (rig.quarantine): tests that run but do not fail the run, each with a reason "
        "and an expiry date; unset: quarantine.yaml beside the inventory, if it exists",
    ),
    Option(
        "repeat",
        "1",
        "runs each selected test this many times and reports its pass rate (rig.flaky): to find flakes",
    ),
    Option(
        "history",
        None,
        "the results store's database URL (rig.history): sqlite:///PATH or postgresql+psycopg://...; "
        "rig gate writes every run to it (unset: rig-history.sqlite beside the inventory), pytest "
        "only when it is given",
        cli="--history",
        commands="gate, history, lab health",
    ),
    Option(
        "health-bad-after",
        "3",
        "a board with this many runs in a row that failed as infrastructure is bad: the gate and tag: "
        "claims skip it until a run passes or a person sets it good (rig lab health, docs/lab.md)",
    ),
    Option(
        "health-max-out",
        "0.5",
        "the largest share of the boards the rig itself may take out of rotation as bad; more, and "
        "the run fails instead, naming them (a broken rig is likelier than a broken lab)",
    ),
)

_BY_NAME = {o.name: o for o in OPTIONS}


def option(name: str) -> Option:
    """The table's entry ``name`` (``"lock-timeout"``)."""
    return _BY_NAME[name]


# -- environment only ------------------------------------------------------------------------

VIRTUAL_NETNS = Variable(
    "RIG_VIRTUAL_NETNS",
    "on",
    "off (or 0, no) runs the virtual board on this machine's network even where a network "
    "namespace of its own works; the network fault tests then skip",
    reader="rig.netns",
)
LOCK_DIR = Variable(
    "RIG_LOCK_DIR",
    "/tmp/micropython-mqtt-rig-locks",
    "where board locks live, shared by every user of the machine: it must be theirs or root's, and "
    "sticky if others may write it (the network namespaces' allocation lock is root's, in "
    "/run/micropython-mqtt-rig)",
    reader="rig.lock",
)
CACHE_DIR = Variable(
    "RIG_CACHE_DIR",
    None,
    "the rig's cache as a whole (dependencies under deps/); unset: "
    "$XDG_CACHE_HOME/micropython-mqtt-rig, else ~/.cache/micropython-mqtt-rig",
    reader="rig.deploy.cache",
)
STATE_DIR = Variable(
    "RIG_STATE_DIR",
    None,
    "the rig's private state: the virtual boards' flash, which holds the run's secrets and is "
    "kept outside the artifacts, under flash/ (mode 0700); unset: "
    "$XDG_STATE_HOME/micropython-mqtt-rig, else ~/.local/state/micropython-mqtt-rig",
    reader="rig.board.virtual_flash",
)
BROKER_USER = Variable(
    "RIG_BROKER_USER",
    None,
    "the login an external broker (--rig-broker-url) is given by every client of the run; "
    "set it together with RIG_BROKER_PASSWORD",
    Use.SECRET,
    reader="rig.broker.external",
)
BROKER_PASSWORD = Variable(
    "RIG_BROKER_PASSWORD",
    None,
    "the password of RIG_BROKER_USER; never written to a log or a report",
    Use.SECRET,
    reader="rig.broker.external",
)
AMQTT_DEBUG = Variable(
    "RIG_AMQTT_DEBUG",
    "0",
    "1 logs the embedded amqtt broker at DEBUG (every packet; about 1.3 MB in 8 minutes of rig up), "
    "for debugging amqtt itself; the rig's evidence is its records, at either level",
    reader="rig.broker.amqtt_runner",
)
LG_COORDINATOR = Variable(
    "LG_COORDINATOR",
    "127.0.0.1:20408",
    "labgrid's own variable: the coordinator of a place whose inventory entry names none",
    reader="rig.lab.places",
)
SECRETS_FILE = Variable(
    "RIG_SECRETS_FILE",
    None,
    "rig gate to each pytest it runs: the private file where the run hands over the secrets it "
    "used, for the gate's secrets audit",
    Use.INTERNAL,
    reader="rig.evidence.run_audit",
)
FLASH = Variable(
    "RIG_FLASH",
    None,
    "the virtual board's supervisor to MicroPython: the directory mounted as the board's flash",
    Use.INTERNAL,
    reader="rig/board/mpy/bootstrap.py (on the board)",
)
RUN_MAIN = Variable(
    "RIG_RUN_MAIN",
    None,
    "the virtual board's supervisor to MicroPython: 1 runs main.py at boot, as a board does",
    Use.INTERNAL,
    reader="rig/board/mpy/bootstrap.py (on the board)",
)

CI = Variable(
    "CI",
    None,
    "set by CI services: any value but 0, false or no fails the run on an unexpected skip, unless "
    "--rig-no-unexpected-skips=0 says otherwise",
    reader="rig.skip_policy",
)

VARIABLES = (
    VIRTUAL_NETNS,
    LOCK_DIR,
    CACHE_DIR,
    STATE_DIR,
    AMQTT_DEBUG,
    BROKER_USER,
    BROKER_PASSWORD,
    LG_COORDINATOR,
    SECRETS_FILE,
    FLASH,
    RUN_MAIN,
    CI,
)


def environment_names() -> list[str]:
    """Every environment variable the rig reads, options' and environment-only ones."""
    return [o.env for o in OPTIONS] + [v.env for v in VARIABLES]


# -- parsing: one function per kind of value, for pytest and the command line alike ----------


def parse_seconds(text: str, source: str, name: str, *, zero: bool = True) -> float:
    """A duration in seconds: a number >= 0 (> 0 when ``zero`` is False)."""
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(source, name, f"expected a number of seconds, got {text!r}") from None
    if math.isnan(value) or value < 0 or (value == 0 and not zero):
        least = "0 or more" if zero else "greater than 0"
        raise ConfigError(source, name, f"must be {least}, got {text!r}")
    return value


def parse_flag(text: str, source: str, name: str) -> bool:
    value = _FLAG_VALUES.get(text.strip().lower())
    if value is None:
        raise ConfigError(source, name, f"expected 1 or 0, got {text!r}")
    return value


def parse_choice(text: str, source: str, name: str, choices: Sequence[str]) -> str:
    value = text.strip().lower()
    if value not in choices:
        raise ConfigError(source, name, f"expected {_or(choices)}, got {text!r}")
    return value


def parse_count(text: str, source: str, name: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(source, name, f"expected a whole number, got {text!r}") from None
    if value < least:
        raise ConfigError(source, name, f"at least {least}, got {text!r}")
    return value


def _or(choices: Sequence[str]) -> str:
    return ", ".join(choices[:-1]) + f" or {choices[-1]}" if len(choices) > 1 else choices[0]


# -- the pytest plugin's view ---------------------------------------------------------------


class Origin(enum.Enum):
    """Where an option's value came from."""

    CLI = "command line"
    ENV = "environment"
    DEFAULT = "default"


@dataclass(frozen=True)
class Given:
    """One option's raw value and where it came from; ``label`` names that place in errors."""

    value: str | None
    origin: Origin
    label: str


@dataclass(frozen=True)
class RigSettings:
    board: str
    inventory: Path
    inventory_given: bool  # named by option or variable, so it must exist
    lock_timeout: float
    tls: bool
    broker: str
    broker_url: str | None
    artifacts: Path
    firmware: Path
    loop_period: float
    firmware_mode: str
    micropython: str | None
    deps_cache: Path | None
    deps_index: Path | None
    offline: bool
    timeout: float
    soak_messages: int = int(option("soak-messages").default or 0)
    broker_interface: str | None = None
    # A release bundle to deploy instead of the firmware tree (rig.release); None: the tree.
    release: Path | None = None
    # Where each value came from, by option name: for messages that name it.
    origins: Mapping[str, Given] | None = None

    def source(self, name: str) -> str:
        """Where option ``name``'s value came from, as errors name it: ``--rig-NAME``,
        ``$RIG_NAME`` or ``--rig-NAME (default)``."""
        given = self.origins.get(name) if self.origins is not None else None
        return given.label if given is not None else option(name).flag


def given_values(
    cli: Callable[[str], str | None], environ: Mapping[str, str] | None = None
) -> dict[str, Given]:
    """Each option's raw value: ``cli(dest)`` (None when not given), else the environment, else
    the default."""
    raw: dict[str, Given] = {}
    for entry in OPTIONS:
        value = cli(entry.dest)
        from_env = entry.from_environment(environ)
        if value is not None:
            raw[entry.name] = Given(value, Origin.CLI, entry.flag)
        elif from_env is not None:
            raw[entry.name] = Given(from_env, Origin.ENV, f"${entry.env}")
        else:
            raw[entry.name] = Given(entry.default, Origin.DEFAULT, f"{entry.flag} (default)")
    return raw


def resolve(cli: Callable[[str], str | None], root: Path) -> RigSettings:
    """Settings from ``cli(dest)`` (None when not given), the environment and the defaults.
    Relative paths are taken from ``root``. Raises ConfigError naming the option and value."""
    raw = given_values(cli)

    def text(name: str) -> str | None:
        return raw[name].value

    def seconds(name: str, zero: bool) -> float:
        return parse_seconds(text(name) or "", raw[name].label, name, zero=zero)

    def path(name: str) -> Path | None:
        value = text(name)
        return None if value is None else (root / value).resolve()

    def flag(name: str) -> bool:
        return parse_flag(text(name) or "0", raw[name].label, name)

    broker = parse_choice(text("broker") or "auto", raw["broker"].label, "broker", BROKERS)
    if text("broker-url") and broker == "auto":
        broker = "external"
    if broker == "external" and not text("broker-url"):
        raise ConfigError(
            raw["broker"].label, "broker", "external needs --rig-broker-url HOST:PORT[,WS_PORT]"
        )
    firmware_mode = parse_choice(
        text("firmware-mode") or "reference", raw["firmware-mode"].label, "firmware-mode", FIRMWARE_MODES
    )
    tls = flag("tls")
    if tls and broker == "external":
        raise ConfigError(
            raw["tls"].label,
            "tls",
            "the rig makes TLS certificates for its own broker only, not an external one",
        )
    artifacts, firmware, inventory = path("artifacts"), path("firmware"), path("inventory")
    assert artifacts is not None and firmware is not None and inventory is not None  # all have defaults
    return RigSettings(
        board=text("board") or "auto",
        inventory=inventory,
        inventory_given=raw["inventory"].origin is not Origin.DEFAULT,
        lock_timeout=seconds("lock-timeout", zero=True),
        broker=broker,
        broker_url=text("broker-url"),
        artifacts=artifacts,
        firmware=firmware,
        loop_period=seconds("loop-period", zero=False),
        firmware_mode=firmware_mode,
        micropython=text("micropython"),
        deps_cache=path("deps-cache"),
        deps_index=path("deps-index"),
        offline=flag("offline"),
        tls=tls,
        timeout=seconds("timeout", zero=False),
        soak_messages=parse_count(
            text("soak-messages") or "", raw["soak-messages"].label, "soak-messages", SOAK_MINIMUM
        ),
        broker_interface=text("broker-interface"),
        release=path("release"),
        origins=raw,
    )


# -- the documentation ----------------------------------------------------------------------


def _cell(text: str | None) -> str:
    return (text or "").replace("|", "\\|")


def _default(value: str | None) -> str:
    return f"`{value}`" if value is not None else "unset"


def markdown() -> str:
    """``docs/settings.md``: every option and every variable, from this table."""
    lines = [
        "# Settings and environment variables",
        "",
        "<!-- Generated from rig/settings.py by `python -m rig.settings --markdown > docs/settings.md`;",
        "     edit the table there, not this page: a test fails when the two disagree. -->",
        "",
        "Every setting the rig has, and every environment variable it reads, is one entry of the",
        "table in `rig/settings.py`; the pytest plugin and every `rig` command read that table, so",
        "each setting has one default.",
        "",
        "## Settings",
        "",
        "Each is `--rig-NAME` on the pytest command line, and the `rig` command's flag where it",
        "has one; either wins over the variable `RIG_NAME`, which wins over the default. A variable",
        "set to an empty string counts as unset. Relative paths are taken from pytest's root",
        "directory (from the current directory for `rig`).",
        "",
        "| pytest | variable | `rig` command line | default | what it is |",
        "|---|---|---|---|---|",
    ]
    for entry in OPTIONS:
        cli = f"`{entry.cli}` ({entry.commands})" if entry.cli else ""
        switch = " A switch: the flag alone means 1." if entry.switch else ""
        lines.append(
            f"| `{entry.flag}` | `{entry.env}` | {_cell(cli)} | {_default(entry.default)} | "
            f"{_cell(entry.help)}.{switch} |"
        )
    titles = {
        Use.SETTING: (
            "Environment only",
            "Machine-wide places and escape hatches, with no command-line flag.",
        ),
        Use.SECRET: ("Secrets", "Only ever read from the environment; the rig never logs their values."),
        Use.INTERNAL: (
            "Internal hand-overs",
            "Set by the rig for a process it starts; listed so that the list is complete, "
            "not to be set by hand.",
        ),
    }
    for use, (title, intro) in titles.items():
        lines += [
            "",
            f"## {title}",
            "",
            intro,
            "",
            "| variable | default | what it is | read by |",
            "|---|---|---|---|",
        ]
        for variable in VARIABLES:
            if variable.use is use:
                lines.append(
                    f"| `{variable.env}` | {_default(variable.default)} | {_cell(variable.help)} | "
                    f"`{variable.reader}` |"
                )
    lines += [
        "",
        "The inventory (`boards.yaml`) may refer to variables of your own choosing for its secrets",
        "(`wifi_password: ${RIG_WIFI_PASSWORD}`); those are the inventory's, not the rig's, and",
        "`rig list` names any that is unset.",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rig.settings", description="The rig's settings table.")
    parser.add_argument("--markdown", action="store_true", help="print docs/settings.md")
    args = parser.parse_args(argv)
    if args.markdown:
        sys.stdout.write(markdown())
    else:
        for name in environment_names():
            print(name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
