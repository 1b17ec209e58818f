"""``run.json``: one run of the suite on one board, rewritten after every test.

Layout of a run's artifact folder (``--rig-artifacts``)::

    run.json                      this record
    junit.xml                     when pytest ran with --junitxml there (rig gate does)
    session/                      serial-<board>.log, broker/, deploy.json, pids.json (the virtual
                                  board's flash is not here: rig.board.virtual_flash)
    <test folder>/                serial.log, mqtt.jsonl, broker.log, timeline.jsonl, timeline.txt

``run.json``::

    {"rig_version": "0.1.0", "started": 1700000000.0, "finished": 1700000100.0 | null,
     "board": {"name": "virtual", "kind": "virtual", "serial_number": null, "port": "/dev/pts/3"},
     "firmware": {"tree_hash": "…", "version": "1.0.0", "mpy": "1.29.0", "platform": "linux",
                  "dependencies": [{"package": "umqtt.simple", "version": "1.3.4", "source": "pypi"}]},
     "broker": {"kind": "mosquitto", "host": "127.0.0.1", "port": 40000},
     "runtime": {"implementation": "micropython", "version": "1.29.0-preview",
                 "build": "9458e3a23f on 2026-07-05", "port": "linux", "machine": "linux [GCC …",
                 "variant": "standard", "mpy": {"raw": 2822, "version": 6, "sub_version": 3,
                 "arch": "x64", "arch_flags": 0}, "release": null, "uname_version": null} | null,
     "runtime_pin": "version 1.29 (boards.yaml:3 (boards[0].runtime))" | "",
     "release": "<sha256 of the release bundle deployed>" | "",
     "boots": [{"reset": "soft reset", "reset_at": 1700000001.5, "client": "rig-virtual-a1b2c3",
                "seconds": 0.412 | null, "clock": "tap" | "broker", "console_seconds": 0.43 | null,
                "note": "" | "not measured: ...", "test": "tests/hil/test_x.py::test_y"}],
     "tests": [{"nodeid": "tests/hil/test_x.py::test_y", "name": "test_y",
                "outcome": "passed" | "failed" | "error" | "skipped",
                "infrastructure": false, "duration": 1.23, "message": "first lines of the failure",
                "artifacts": "tests_hil_test_x.py_test_y", "started": 1700000001.0,
                "properties": {"board": "virtual", ...}}]}

``runtime`` is what MicroPython the board said it runs when the rig connected
(``rig.runtime.RuntimeIdentity``), null until then; ``runtime_pin`` what the bench pinned it to.
``release`` is the hash of the release bundle the run deployed instead of the firmware tree
(``--rig-release``, ``rig gate --release``; every test's properties name it too), "" for a tree.
``boots`` holds each reset of the board the rig waited on and how long until the broker saw the
firmware's CONNECT (``rig.evidence.boot_time``): ``seconds`` null and ``note`` saying why when it
could not be measured.
``artifacts`` is relative to the run folder. ``infrastructure`` is true when the rig, not the
firmware, failed (port vanished, board unreachable, broker down): a gate may retry those.

Every part is a dataclass, so that the writer (the plugin) and the readers (the gate, the
report) cannot disagree on a key: ``load`` rejects a record with an unknown key or a wrong
type (``strict=True``) or, for readers that must cope with a newer rig, skips unknown keys.
"""

from __future__ import annotations

import json
import types
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, TypeVar

from rig.atomic import write_atomically
from rig.runtime.identity import RuntimeIdentity

OUTCOMES = ("passed", "failed", "error", "skipped")


@dataclass
class BoardInfo:
    """Which board ran: its inventory name and kind, its USB serial number, its port URL."""

    name: str = ""
    kind: str = ""
    serial_number: str | None = None
    port: str = ""


@dataclass
class DependencyInfo:
    """One locked firmware dependency that was installed on the board."""

    package: str
    version: str
    source: str


@dataclass
class FirmwareInfo:
    """Which firmware ran: the deployed tree, what the board reported at boot, its libraries."""

    tree_hash: str = ""
    version: str = ""
    mpy: str = ""
    platform: str = ""
    dependencies: list[DependencyInfo] = field(default_factory=list)

    def dependency_summary(self) -> str:
        """``umqtt.simple 1.3.4 (pypi), umqtt.robust 1.0 (pypi)``; empty when there are none."""
        return ", ".join(f"{d.package} {d.version} ({d.source})" for d in self.dependencies)


@dataclass
class BrokerInfo:
    kind: str = ""
    host: str = ""
    port: int = 0


@dataclass
class BootRecord:
    """One reset of the board, and how long until the broker saw the firmware's CONNECT
    (``rig.evidence.boot_time``): ``reset`` says how ("soft reset", "power cycle"), ``reset_at``
    when (wall clock), ``client`` whose CONNECT ended it, ``clock`` which clock stamped that
    CONNECT, ``console_seconds`` when the console said ``connected`` (a second witness, never the
    measure), ``test`` the test during which it happened. ``seconds`` is None when it could not be
    measured, and ``note`` then says why."""

    reset: str
    reset_at: float
    client: str
    seconds: float | None = None
    clock: str = ""
    console_seconds: float | None = None
    note: str = ""
    test: str = ""


@dataclass
class TestRecord:
    nodeid: str
    name: str
    outcome: str
    duration: float = 0.0
    infrastructure: bool = False
    message: str = ""
    artifacts: str = ""
    started: float = 0.0
    properties: dict[str, str] = field(default_factory=dict)


@dataclass
class RunRecord:
    rig_version: str
    started: float
    finished: float | None = None
    board: BoardInfo = field(default_factory=BoardInfo)
    firmware: FirmwareInfo = field(default_factory=FirmwareInfo)
    broker: BrokerInfo = field(default_factory=BrokerInfo)
    runtime: RuntimeIdentity | None = None
    runtime_pin: str = ""
    release: str = ""
    boots: list[BootRecord] = field(default_factory=list)
    tests: list[TestRecord] = field(default_factory=list)

    def save(self, path: Path) -> None:
        """Atomically: a run killed mid-write leaves the previous, whole record."""
        write_atomically(path, json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, path: Path, *, strict: bool = True) -> RunRecord:
        """Read ``path``. Raises ``ValueError`` (or ``OSError``) for a file that is not a run
        record; with ``strict=False``, keys this rig does not know are skipped."""
        return from_json(cls, json.loads(path.read_text(encoding="utf-8")), strict=strict)


T = TypeVar("T")


def from_json(cls: type[T], doc: Any, *, strict: bool = True, where: str = "") -> T:
    """Build dataclass ``cls`` from parsed JSON, checking every field's type."""
    where = where or cls.__name__
    if not isinstance(doc, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(doc).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(doc) - known)
    if unknown and strict:
        raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}")
    defaults = {f.name for f in fields(cls) if f.default is not MISSING or f.default_factory is not MISSING}  # type: ignore[arg-type]
    values = {}
    for key, value in doc.items():
        if key not in known:
            continue
        try:
            values[key] = _convert(hints[key], value, strict, f"{where}.{key}")
        except ValueError:
            if strict or key not in defaults:
                raise
            # A lenient reader keeps what it can: a field of a wrong type falls back to its default.
    missing = [f.name for f in fields(cls) if f.name not in values and f.name not in defaults]  # type: ignore[arg-type]
    if missing:
        raise ValueError(f"{where}: missing key(s) {', '.join(missing)}")
    try:
        return cls(**values)
    except TypeError as e:  # a required key is missing
        raise ValueError(f"{where}: {e}") from e


def _convert(hint: Any, value: Any, strict: bool, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        return _convert(options[0], value, strict, where)
    if origin is list:
        if not isinstance(value, list):
            raise ValueError(f"{where}: expected a list, got {type(value).__name__}")
        return [_convert(args[0], v, strict, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{where}: expected an object, got {type(value).__name__}")
        return {str(k): _convert(args[1], v, strict, f"{where}.{k}") for k, v in value.items()}
    if is_dataclass(hint) and isinstance(hint, type):
        return from_json(hint, value, strict=strict, where=where)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is Any or (isinstance(hint, type) and isinstance(value, hint)):
        return value
    raise ValueError(f"{where}: expected {getattr(hint, '__name__', hint)}, got {value!r}")
