"""The firmware's contract with the rig: ``rig-contract.yaml``, kept next to the firmware.

An echo firmware declares here what the rig may rely on: the topic it echoes on and the one it
reports its presence on (if any), the client id it connects with, the config file it reads and
which of its keys the rig fills in (the rig's: broker, login, Wi-Fi, TLS) and which are the app's
own (its loop, its limits), whether it has a will, which ``@rig`` event lines it prints (if any),
its idle line and how it prints a message it received.

The suite judges any echo firmware against what it declares. A check that needs a witness the
firmware does not give raises ``NotDeclared``; the plugin reports it as "not checked: REASON"
(``rig.fixtures.contract``). Bad input is a ``ConfigError`` naming the file and the key.

ruamel.yaml (the inventory's YAML library, so no second parser) reads the file; this module only
checks it. YAML rather than JSON: a contract is read by people, and wants comments.
"""

from __future__ import annotations

import json
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from rig.errors import ConfigError
from rig.serial_events import KNOWN_EVENTS

CONTRACT_FILE = "rig-contract.yaml"

# The values the rig can write into a firmware's config file, under the firmware's own key names.
RIG_VALUES = frozenset(
    {
        "broker_host",
        "broker_port",
        "client_id",
        "topic_prefix",
        "keepalive",
        "broker_user",
        "broker_password",
        "wifi_ssid",
        "wifi_password",
        "tls_ca",
        "tls_server_name",
    }
)
# Placeholders a topic or the client id may hold: the rig's per-board, per-run topic prefix and
# the client id it gives the board. A fixed name (the tutorial's foo_topic) holds none.
PLACEHOLDERS = frozenset({"prefix", "client_id"})
CONFIG_FORMATS = ("json", "python")
# How a firmware prints a message it received: "tuple" is the tutorial's print((topic, msg)).
RECEIVED_PRINTS = ("tuple", "none")


class NotDeclared(Exception):
    """A check needs a witness the firmware's contract does not declare (an ``@rig`` event, a
    status topic, a will...). Not a failure of the firmware: the check is reported as "not
    checked", with ``reason``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class FirmwareContract:
    """What one firmware tree declares (see the module). Read with ``load_contract``."""

    path: Path
    echo_topic: str
    status_topic: str | None
    client_id: str
    login: bool
    will: bool
    hello: bytes | None
    config_file: str
    config_format: str
    # The firmware's key -> the rig's value written under it (one of RIG_VALUES).
    rig_keys: Mapping[str, str]
    # The app's own keys with their defaults: the rig writes them, tests may set them by marker.
    app: Mapping[str, Any]
    # The loop period (s) of a firmware that has no loop_period key: the tutorial sleeps 1 s.
    fixed_loop_period: float | None
    events: frozenset[str]
    idle_line: str | None
    received_print: str
    notes: tuple[str, ...] = field(default=())

    # -- what the rig needs to ask -----------------------------------------------------------

    def writes(self, rig_value: str) -> bool:
        """Whether the firmware reads ``rig_value`` (a RIG_VALUES name) from its config."""
        return rig_value in self.rig_keys.values()

    def emits(self, *events: str) -> bool:
        return all(ev in self.events for ev in events)

    def require_events(self, *events: str, why: str = "") -> None:
        """Raise ``NotDeclared`` unless the firmware prints every one of ``events``."""
        missing = [ev for ev in events if ev not in self.events]
        if missing:
            shown = ", ".join(f"'{ev}'" for ev in missing)
            declared = ", ".join(sorted(self.events)) or "none"
            raise NotDeclared(
                f"{why + ': ' if why else ''}the firmware prints no @rig {shown} event line "
                f"({self.path} declares events: {declared})"
            )

    def require_status(self, why: str = "") -> str:
        """The status topic's template; ``NotDeclared`` if the firmware has none."""
        if self.status_topic is None:
            raise NotDeclared(f"{why + ': ' if why else ''}the firmware has no status topic ({self.path})")
        return self.status_topic

    def require_will(self, why: str = "") -> None:
        if not self.will:
            raise NotDeclared(f"{why + ': ' if why else ''}the firmware sets no will ({self.path})")

    def require_login(self, why: str = "") -> None:
        if not self.login:
            raise NotDeclared(f"{why + ': ' if why else ''}the firmware does not log in ({self.path})")

    def require_app_key(self, key: str, why: str = "") -> Any:
        if key not in self.app:
            raise NotDeclared(
                f"{why + ': ' if why else ''}the firmware has no {key!r} setting in its config ({self.path})"
            )
        return self.app[key]

    def render(self, template: str, *, prefix: str, client_id: str) -> str:
        return template.format(prefix=prefix, client_id=client_id)

    def config_bytes(self, values: Mapping[str, Any], app: Mapping[str, Any]) -> bytes:
        """The config file's content: each rig key with its value (None: left out), then the
        app's own settings, in the declared format."""
        settings = {key: values[rig] for key, rig in self.rig_keys.items() if values.get(rig) is not None}
        settings.update(app)
        if self.config_format == "python":
            lines = [f"# {self.config_file}: written by the rig at deploy ({self.path.name})"]
            lines += [f"{key} = {value!r}" for key, value in sorted(settings.items())]
            return ("\n".join(lines) + "\n").encode()
        # UTF-8 as is: MicroPython's json reads a \ud83d\ude00 escape pair as two lone surrogates,
        # so a topic with a character beyond U+FFFF reached the board as ill-formed UTF-8 (topic-utf8).
        return json.dumps(settings, indent=1, sort_keys=True, ensure_ascii=False).encode() + b"\n"


@cache
def firmware_contract(firmware_dir: Path) -> FirmwareContract:
    """``load_contract``, read once per tree for a run (tests ask for it many times)."""
    return load_contract(firmware_dir)


def load_contract(firmware_dir: Path) -> FirmwareContract:
    """The contract of the firmware tree ``firmware_dir``; ``ConfigError`` naming the file and key
    when it is missing or wrong."""
    path = firmware_dir / CONTRACT_FILE
    try:
        data = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise ConfigError(
            str(path),
            "(file)",
            "no firmware contract: every firmware the rig runs declares its topics, client id, "
            f"config and console lines in {CONTRACT_FILE} (see firmware/{CONTRACT_FILE})",
        ) from e
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(str(path), "(file)", f"cannot read the firmware contract: {e}") from e
    except YAMLError as e:
        raise ConfigError(str(path), "(file)", f"not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(str(path), "(file)", f"must be a mapping of sections, got {type(data).__name__}")
    return parse_contract(data, path)


class _Reader:
    """Typed access to one table of the contract, every error naming the file and the key."""

    def __init__(self, data: Mapping[str, Any], path: Path, table: str) -> None:
        self.data = data
        self.path = path
        self.table = table

    def key(self, key: str) -> str:
        return f"{self.table}.{key}" if self.table else key

    def bad(self, key: str, problem: str) -> ConfigError:
        """The error for ``key`` of this table: names the file, the key's dotted path, the problem."""
        return ConfigError(str(self.path), self.key(key), problem)

    def unknown(self, known: Iterable[str]) -> None:
        extra = sorted(set(self.data) - set(known))
        if extra:
            raise self.bad(extra[0], f"unknown key; known: {', '.join(sorted(known))}")

    def table_of(self, key: str) -> _Reader:
        value = self.data.get(key, {})
        if not isinstance(value, dict):
            raise self.bad(key, f"must be a mapping, got {value!r}")
        return _Reader(value, self.path, self.key(key))

    def string(self, key: str, *, required: bool = True) -> str | None:
        if key not in self.data:
            if required:
                raise self.bad(key, "missing")
            return None
        value = self.data[key]
        if not isinstance(value, str) or not value:
            raise self.bad(key, f"must be a non-empty string, got {value!r}")
        return value

    def flag(self, key: str) -> bool:
        if key not in self.data:
            raise self.bad(key, "missing (true or false)")
        value = self.data[key]
        if not isinstance(value, bool):
            raise self.bad(key, f"must be true or false, got {value!r}")
        return value

    def template(self, key: str, *, required: bool = True) -> str | None:
        value = self.string(key, required=required)
        if value is None:
            return None
        try:
            names = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
        except ValueError as e:
            raise self.bad(key, f"{value!r}: {e}") from e
        wrong = sorted(names - PLACEHOLDERS)
        if wrong:
            raise self.bad(
                key,
                f"{value!r}: unknown placeholder {{{wrong[0]}}}; "
                f"known: {', '.join('{' + p + '}' for p in sorted(PLACEHOLDERS))}",
            )
        return value


def parse_contract(data: Mapping[str, Any], path: Path) -> FirmwareContract:
    """Check ``data`` (the parsed TOML of ``path``) and make the contract of it."""
    top = _Reader(data, path, "")
    top.unknown(["mqtt", "config", "console", "notes"])
    mqtt = top.table_of("mqtt")
    mqtt.unknown(["echo_topic", "status_topic", "client_id", "login", "will", "hello"])
    echo_topic = mqtt.template("echo_topic")
    status_topic = mqtt.template("status_topic", required=False)
    client_id = mqtt.template("client_id")
    login = mqtt.flag("login")
    will = mqtt.flag("will")
    if will and status_topic is None:
        raise mqtt.bad("will", "a will needs a status_topic to be published on")
    hello = mqtt.string("hello", required=False)

    config = top.table_of("config")
    config.unknown(["file", "format", "rig", "app", "loop_period"])
    config_file = config.string("file")
    config_format = config.string("format")
    if config_format not in CONFIG_FORMATS:
        raise config.bad("format", f"{config_format!r}: one of {', '.join(CONFIG_FORMATS)}")
    rig_table = config.table_of("rig")
    rig_keys: dict[str, str] = {}
    for key, value in rig_table.data.items():
        if not isinstance(value, str) or value not in RIG_VALUES:
            raise rig_table.bad(
                key, f"{value!r} is not a value the rig writes; one of {', '.join(sorted(RIG_VALUES))}"
            )
        rig_keys[key] = value
    if "client_id" in rig_keys.values() and "{client_id}" not in (client_id or ""):
        raise mqtt.bad("client_id", "the rig writes client_id, so it must be '{client_id}'")
    if login and not {"broker_user", "broker_password"} <= set(rig_keys.values()):
        raise mqtt.bad(
            "login",
            "a firmware that logs in must read broker_user and broker_password from its config (config.rig)",
        )
    app_table = config.table_of("app")
    app = dict(app_table.data)
    clash = sorted(set(app) & set(rig_keys))
    if clash:
        raise app_table.bad(clash[0], "also a rig key (config.rig); a key has one owner")
    fixed_period = config.data.get("loop_period")
    if fixed_period is not None and (
        isinstance(fixed_period, bool) or not isinstance(fixed_period, int | float) or fixed_period <= 0
    ):
        raise config.bad("loop_period", f"must be a number of seconds > 0, got {fixed_period!r}")
    if fixed_period is None and "loop_period" not in app:
        raise config.bad(
            "loop_period",
            "missing: the firmware's fixed loop period (s), or a loop_period key in config.app",
        )

    console = top.table_of("console")
    console.unknown(["events", "idle_line", "received_print"])
    events = console.data.get("events", [])
    if not isinstance(events, list) or not all(isinstance(e, str) and e for e in events):
        raise console.bad("events", f"must be a list of event names, got {events!r}")
    unknown = sorted(set(events) - KNOWN_EVENTS)
    if unknown:
        raise console.bad(
            "events",
            f"{unknown[0]!r} is not an @rig event the rig knows; known: {', '.join(sorted(KNOWN_EVENTS))}",
        )
    received_print = console.string("received_print")
    if received_print not in RECEIVED_PRINTS:
        raise console.bad("received_print", f"{received_print!r}: one of {', '.join(RECEIVED_PRINTS)}")
    notes = data.get("notes", [])
    if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
        raise ConfigError(str(path), "notes", "must be a list of strings")
    assert echo_topic is not None and client_id is not None and config_file is not None
    return FirmwareContract(
        path=path,
        echo_topic=echo_topic,
        status_topic=status_topic,
        client_id=client_id,
        login=login,
        will=will,
        hello=hello.encode() if hello is not None else None,
        config_file=config_file,
        config_format=config_format or "json",
        rig_keys=rig_keys,
        app=app,
        fixed_loop_period=float(fixed_period) if fixed_period is not None else None,
        events=frozenset(events),
        idle_line=console.string("idle_line", required=False),
        received_print=received_print or "none",
        notes=tuple(notes),
    )
