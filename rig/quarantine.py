"""The quarantine file: tests the lab knows to fail, each with a reason and an expiry date.

A quarantined test still runs and its result is reported (``rig.flaky`` marks it), but its
failure does not fail the run or the gate. An entry past its expiry date shields nothing: it is
a warning that names it, so a quarantine cannot outlive the reason it was written for.

The file (YAML, a list under ``quarantine:``)::

    quarantine:
      - test: tests/hil/test_faults.py::test_broker_restart   # a nodeid, or an fnmatch pattern
        board: bench-2          # optional: only on this board; or tag: wifi
        reason: "broker restart races the keepalive (#42)"
        expires: 2027-01-31     # required
        rerun: true             # optional: a failure is run once more (rig.flaky)

Lifecycle: ``load(path)`` reads and checks the whole file once (a bad entry is a ``ConfigError``
naming the file, the entry and the key); ``Quarantine.match`` is then pure.
"""

from __future__ import annotations

import datetime
import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from rig.errors import ConfigError

_KEYS = ("test", "board", "tag", "reason", "expires", "rerun")


@dataclass(frozen=True)
class Entry:
    """One quarantined test: ``test`` is a nodeid or an fnmatch pattern over nodeids."""

    test: str
    reason: str
    expires: datetime.date
    board: str | None = None
    tag: str | None = None
    rerun: bool = False
    # Where it was written, for warnings: ``quarantine.yaml entry 2``.
    where: str = ""

    def expired(self, today: datetime.date) -> bool:
        return today > self.expires

    def covers(self, nodeid: str, board: str, tags: frozenset[str]) -> bool:
        if nodeid != self.test and not fnmatch.fnmatchcase(nodeid, self.test):
            return False
        if self.board is not None and self.board != board:
            return False
        return self.tag is None or self.tag in tags

    def describe(self) -> str:
        scope = f" on board {self.board}" if self.board else f" on tag:{self.tag}" if self.tag else ""
        return f"{self.where}: {self.test}{scope} (expired {self.expires.isoformat()}: {self.reason})"


@dataclass(frozen=True)
class Quarantine:
    """The entries of one file (none when the file does not exist)."""

    entries: Sequence[Entry] = ()

    def match(
        self, nodeid: str, board: str, tags: frozenset[str], today: datetime.date
    ) -> tuple[Entry | None, Entry | None]:
        """(the live entry that shields this test, an expired entry that would have)."""
        live = expired = None
        for entry in self.entries:
            if entry.covers(nodeid, board, tags):
                if not entry.expired(today):
                    live = live or entry
                else:
                    expired = expired or entry
        return live, expired

    def needs_board(self) -> bool:
        return any(e.board is not None or e.tag is not None for e in self.entries)

    def expired(self, today: datetime.date) -> list[Entry]:
        return [e for e in self.entries if e.expired(today)]


def load(path: Path, *, named: bool = False) -> Quarantine:
    """Read ``path``. A missing file is an empty quarantine unless it was ``named`` (by option or
    variable): then it is a mistake, said as one."""
    source = str(path)
    if not path.exists():
        if named:
            raise ConfigError(source, "quarantine", "no such file")
        return Quarantine()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ConfigError(source, "quarantine", f"not YAML: {e}") from e
    if data is None:
        return Quarantine()
    if not isinstance(data, dict) or set(data) - {"quarantine"}:
        raise ConfigError(
            source, "quarantine", "the file is a mapping with one key, quarantine: a list of entries"
        )
    items = data.get("quarantine") or []
    if not isinstance(items, list):
        raise ConfigError(source, "quarantine", "is a list of entries")
    return Quarantine(tuple(_entry(source, number, item) for number, item in enumerate(items, 1)))


def _entry(source: str, number: int, item: object) -> Entry:
    where = f"{source} entry {number}"
    if not isinstance(item, dict):
        raise ConfigError(where, "entry", "is a mapping (test, reason, expires, ...)")
    unknown = sorted(str(k) for k in item if k not in _KEYS)
    if unknown:
        raise ConfigError(where, unknown[0], f"unknown key (known: {', '.join(_KEYS)})")
    for key in ("test", "reason", "expires"):
        if item.get(key) in (None, ""):
            raise ConfigError(where, key, "is required")
    test, reason = item["test"], item["reason"]
    for key, value in (("test", test), ("reason", reason)):
        if not isinstance(value, str):
            raise ConfigError(where, key, f"is text, not {value!r}")
    if item.get("board") is not None and item.get("tag") is not None:
        raise ConfigError(where, "board", "give board or tag, not both")
    for key in ("board", "tag"):
        if item.get(key) is not None and not isinstance(item[key], str):
            raise ConfigError(where, key, f"is a name, not {item[key]!r}")
    rerun = item.get("rerun", False)
    if not isinstance(rerun, bool):
        raise ConfigError(where, "rerun", f"is true or false, not {rerun!r}")
    return Entry(
        test=test,
        reason=reason,
        expires=_date(where, item["expires"]),
        board=item.get("board"),
        tag=item.get("tag"),
        rerun=rerun,
        where=where,
    )


def _date(where: str, value: object) -> datetime.date:
    # YAML reads an unquoted 2027-01-31 as a date already; a quoted one is text.
    if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.date.fromisoformat(value)
        except ValueError:
            pass
    raise ConfigError(where, "expires", f"is a date YYYY-MM-DD, not {value!r}")
