"""The rig's options: one table, one prefix (``--rig-*``), each with an environment fallback."""

from __future__ import annotations

import enum
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rig.errors import ConfigError


@dataclass(frozen=True)
class Option:
    """``--rig-NAME`` on the command line, else ``$RIG_NAME``, else ``default``."""

    name: str
    default: str | None
    help: str
    # A switch: the flag alone means "1" (``--rig-tls``); ``--rig-tls=0`` still turns it off.
    switch: bool = False

    @property
    def flag(self) -> str:
        return f"--rig-{self.name}"

    @property
    def env(self) -> str:
        return "RIG_" + self.name.upper().replace("-", "_")

    @property
    def dest(self) -> str:
        return "rig_" + self.name.replace("-", "_")


OPTIONS = (
    Option(
        "board",
        "auto",
        "board to test: a name from the inventory, or auto (the one USB board present, else virtual); "
        "or a set to take the first free board of, A,B or tag:NAME (each pytest-xdist worker takes its own)",
    ),
    Option("inventory", "boards.yaml", "the bench inventory"),
    Option("lock-timeout", "60", "how long (s) to wait for a board another run is using"),
    Option(
        "broker", "auto", "broker: auto (mosquitto if installed, else amqtt), mosquitto, amqtt or external"
    ),
    Option("broker-url", None, "external broker as HOST:PORT[,WS_PORT]; implies --rig-broker=external"),
    Option("artifacts", "artifacts", "directory for each test's serial log and MQTT trace"),
    Option("firmware", "firmware", "firmware tree to deploy"),
    Option("loop-period", "0.1", "firmware loop period (s) for tests not marked reference_period"),
    Option("firmware-mode", "reference", "firmware loop: reference (sleep, then check) or responsive (poll)"),
    Option("micropython", None, "the unix port executable for the virtual board"),
    Option("deps-cache", None, "firmware dependency cache (default ~/.cache/micropython-mqtt-rig/deps)"),
    Option(
        "deps-index",
        None,
        "firmware dependency index: a local mip v2 index directory, as rig deps export writes",
    ),
    Option("offline", "0", "1 to take firmware dependencies from the cache and the local index only"),
    Option(
        "tls",
        "0",
        "the board connects to the embedded broker over TLS (a CA and a server certificate made for the run)",
        switch=True,
    ),
    Option("timeout", "10", "bound (s) of each wait on the board or the broker"),
)


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


REFERENCE_LOOP_PERIOD = 1.0
FIRMWARE_MODES = ("reference", "responsive")


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


def resolve(cli: Callable[[str], str | None], root: Path) -> RigSettings:
    """Settings from ``cli(dest)`` (None when not given), the environment and the defaults.
    Relative paths are taken from ``root``. Raises ConfigError naming the option and value."""
    raw: dict[str, Given] = {}
    for option in OPTIONS:
        given = cli(option.dest)
        if given is not None:
            raw[option.name] = Given(given, Origin.CLI, option.flag)
        elif os.environ.get(option.env):
            raw[option.name] = Given(os.environ[option.env], Origin.ENV, f"${option.env}")
        else:
            raw[option.name] = Given(option.default, Origin.DEFAULT, f"{option.flag} (default)")

    def text(name: str) -> str | None:
        return raw[name].value

    def number(name: str, low: float) -> float:
        value, source = raw[name].value, raw[name].label
        try:
            parsed = float(value or "")
        except ValueError:
            raise ConfigError(source, name, f"expected a number of seconds, got {value!r}") from None
        if not parsed > low:
            raise ConfigError(source, name, f"must be greater than {low}, got {value!r}")
        return parsed

    def path(name: str) -> Path | None:
        value = text(name)
        return None if value is None else (root / value).resolve()

    broker = (text("broker") or "auto").lower()
    if text("broker-url") and broker == "auto":
        broker = "external"
    if broker not in ("auto", "mosquitto", "amqtt", "external"):
        raise ConfigError(
            raw["broker"].label, "broker", f"expected auto, mosquitto, amqtt or external, got {broker!r}"
        )
    if broker == "external" and not text("broker-url"):
        raise ConfigError(
            raw["broker"].label, "broker", "external needs --rig-broker-url HOST:PORT[,WS_PORT]"
        )
    board = text("board") or "auto"
    firmware_mode = (text("firmware-mode") or "reference").lower()
    if firmware_mode not in FIRMWARE_MODES:
        raise ConfigError(
            raw["firmware-mode"].label,
            "firmware-mode",
            f"expected reference or responsive, got {firmware_mode!r}",
        )

    def flag(name: str) -> bool:
        value = (text(name) or "0").lower()
        if value not in ("0", "1", "true", "false", "yes", "no"):
            raise ConfigError(raw[name].label, name, f"expected 1 or 0, got {value!r}")
        return value in ("1", "true", "yes")

    offline = flag("offline")
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
        board=board,
        inventory=inventory,
        inventory_given=raw["inventory"].origin is not Origin.DEFAULT,
        lock_timeout=number("lock-timeout", -1.0),
        broker=broker,
        broker_url=text("broker-url"),
        artifacts=artifacts,
        firmware=firmware,
        loop_period=number("loop-period", 0.0),
        firmware_mode=firmware_mode,
        micropython=text("micropython"),
        deps_cache=path("deps-cache"),
        deps_index=path("deps-index"),
        offline=offline,
        tls=tls,
        timeout=number("timeout", 0.0),
    )
