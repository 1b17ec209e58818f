"""A finished run, for the bench page to replay: its tests, and one test's timeline turned into
the events the live hub gives (``rig.bench_page.hub``), so the page shows both with one view.

A run's artifacts folder holds ``run.json`` and a folder per test (with several boards, a
folder per board holding those); a test's folder holds ``serial.log``, ``mqtt.jsonl``,
``broker.log`` and ``timeline.jsonl`` (``rig.evidence.timeline``). The timeline becomes:

- ``console`` events: its ``serial`` entries, and the ``rig`` lines the rig wrote into the
  serial log (they start with ``[rig]``);
- ``mqtt`` events: its ``mqtt`` entries in the ``in`` direction, what the host's observer
  received (``payload`` as text when it decodes, ``hex`` always);
- ``status`` events: the messages among those on a status topic (``…/status``) that say
  ``online``, ``offline`` or ``lost``;
- ``action`` events named ``inject``: what the test itself published (``out`` entries).

Broker log lines are not replayed: the live page does not show them either.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rig.bench_page.actions import ACTIONS, ActionUnavailable
from rig.bench_page.hub import Event
from rig.errors import RigError
from rig.evidence.run_record import RunRecord, TestRecord
from rig.evidence.timeline import read_timeline
from rig.report.text import payload_bytes, payload_label

TIMELINE = "timeline.jsonl"
STATUS_VALUES = ("online", "offline", "lost")
# Why a replay's buttons are greyed out: the board of a finished run is not there to act on.
FINISHED = "a finished run: there is no board to act on"


class ReplayError(RigError):
    """The folder given is not a run's artifacts, or a test's timeline cannot be read; the
    message names the path."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path = path
        super().__init__(f"{path}: {problem}")


class UnknownTest(ReplayError):
    """No test of the replayed run has this id."""


@dataclass(frozen=True)
class ReplayTest:
    # The test's folder relative to the artifacts folder ("board/test" in a multi-board run).
    id: str
    folder: Path
    nodeid: str
    # From run.json: passed, failed, error, skipped; "" when the run did not record the test.
    outcome: str = ""
    message: str = ""
    started: float = 0.0

    def to_json(self) -> dict[str, Any]:
        fields = dataclasses.asdict(self)
        fields["folder"] = str(self.folder)
        return fields


class ReplaySource:
    """The tests of one finished run, read from disk on each call (a run still going shows the
    tests it has so far). Made with the artifacts folder, or one test's folder; raises
    ``ReplayError`` when there is no test timeline to replay in it."""

    def __init__(self, artifacts_dir: Path) -> None:
        self.folder = Path(artifacts_dir)
        if not self.folder.exists():
            raise ReplayError(self.folder, "no such folder (expected a run's artifacts folder)")
        if not self.folder.is_dir():
            raise ReplayError(self.folder, "not a folder (expected a run's artifacts folder)")
        if not self.tests():
            raise ReplayError(
                self.folder,
                f"not a run's artifacts folder: no test folder in it has a {TIMELINE} (a run's "
                "artifacts hold run.json and one folder per test, each with serial.log, "
                f"mqtt.jsonl, broker.log and {TIMELINE})",
            )

    def info(self) -> dict[str, Any]:
        """What the page shows in its header for this run (``BenchServer``'s ``info``)."""
        boards = sorted({r.board.name for r in _records(self.folder).values() if r.board.name})
        return {
            "mode": "replay",
            "board": ", ".join(boards) or self.folder.name,
            "artifacts": str(self.folder),
        }

    def tests(self) -> list[ReplayTest]:
        """The run's tests that have a timeline, in the order the run recorded them (then any
        it did not record, by name)."""
        if (self.folder / TIMELINE).is_file():
            # One test's folder: its run.json is the parent's.
            known = _known_tests(self.folder.parent)
            return [_test(self.folder.name, self.folder, known)]
        known = _known_tests(self.folder)
        folders = [
            timeline.parent
            for pattern in (f"*/{TIMELINE}", f"*/*/{TIMELINE}")
            for timeline in self.folder.glob(pattern)
            if timeline.is_file()
        ]
        tests = [_test(f.relative_to(self.folder).as_posix(), f, known) for f in folders]
        order = {key: i for i, key in enumerate(known)}
        return sorted(tests, key=lambda t: (order.get(t.id, len(order)), t.id))

    def test(self, test_id: str) -> ReplayTest:
        tests = self.tests()
        for test in tests:
            if test.id == test_id:
                return test
        names = ", ".join(t.id for t in tests[:5]) + (" …" if len(tests) > 5 else "")
        raise UnknownTest(self.folder, f"no test {test_id!r} with a {TIMELINE} here (its tests: {names})")

    def test_events(self, test_id: str) -> tuple[ReplayTest, list[Event]]:
        """The test and its timeline as hub events, in time order."""
        test = self.test(test_id)
        path = test.folder / TIMELINE
        try:
            entries = read_timeline(path)
        except (OSError, ValueError) as e:  # ValueError: not UTF-8
            raise ReplayError(path, f"timeline unreadable: {e}") from e
        return test, timeline_events(entries)


def _test(test_id: str, folder: Path, known: dict[str, TestRecord]) -> ReplayTest:
    record = known.get(test_id)
    if record is None:
        return ReplayTest(test_id, folder, folder.name)
    return ReplayTest(test_id, folder, record.nodeid, record.outcome, record.message, record.started)


def _records(root: Path) -> dict[str, RunRecord]:
    """run.json of the run and of each board's folder, by the folder its tests are under
    relative to ``root`` ("." for the run's own)."""
    found: dict[str, RunRecord] = {}
    for path in [root / "run.json", *sorted(root.glob("*/run.json"))]:
        try:
            record = RunRecord.load(path, strict=False)
        except (OSError, ValueError, TypeError, AttributeError):
            continue  # missing, or cut short by a kill: the timelines are still worth seeing
        found[path.parent.relative_to(root).as_posix()] = record
    return found


def _known_tests(root: Path) -> dict[str, TestRecord]:
    """The tests the run recorded, by their folder relative to ``root``, in the run's order."""
    known: dict[str, TestRecord] = {}
    for base, record in _records(root).items():
        for test in record.tests:
            if test.artifacts:
                known.setdefault(test.artifacts if base == "." else f"{base}/{test.artifacts}", test)
    return known


def timeline_events(entries: list[dict[str, Any]]) -> list[Event]:
    """Timeline entries as hub events (see the module docstring), sorted by time; entries
    without a usable time are left out."""
    events: list[Event] = []
    for entry in entries:
        t = entry.get("t")
        if not isinstance(t, int | float) or isinstance(t, bool):
            continue
        events.extend(_events_of(float(t), entry))
    events.sort(key=lambda e: float(e["t"]))
    return events


def _events_of(t: float, entry: dict[str, Any]) -> list[Event]:
    src = entry.get("src")
    if src in ("serial", "rig"):
        return [{"kind": "console", "t": t, "text": str(entry.get("text", "")), "src": src}]
    if src != "mqtt" or not isinstance(entry.get("topic"), str):
        return []
    topic = entry["topic"]
    data = payload_bytes(entry.get("hex"), entry.get("payload", ""))
    qos = entry.get("qos") if isinstance(entry.get("qos"), int) else 0
    retain = bool(entry.get("retain"))
    if entry.get("dir") == "out":
        detail = f"the test published {payload_label(data, 60)} on {topic}"
        return [
            {
                "kind": "action",
                "t": t,
                "name": "inject",
                "ok": True,
                "detail": detail,
                "topic": topic,
                "hex": data.hex(),
                "qos": qos,
                "retain": retain,
            }
        ]
    if entry.get("dir") != "in":
        return []
    try:
        text: str | None = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    message: Event = {
        "kind": "mqtt",
        "t": t,
        "topic": topic,
        "payload": text,
        "hex": data.hex(),
        "qos": qos,
        "retain": retain,
    }
    if topic.endswith("/status") and text in STATUS_VALUES:
        return [message, {"kind": "status", "t": t, "value": text}]
    return [message]


class ReplayActions:
    """``BenchActions`` for a replay: nothing can be done to a finished run's board."""

    def unavailable(self) -> dict[str, str]:
        return {name: FINISHED for name in (*ACTIONS, "inject")}

    def inject(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        raise ActionUnavailable(FINISHED)

    def run(self, action: str) -> str:
        raise ActionUnavailable(FINISHED)
