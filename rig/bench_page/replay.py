"""A finished run, for the bench page to replay: its tests, and one test's timeline turned into
the events the live hub gives (``rig.bench_page.hub``), so the page shows both with one view.

The run's folder is read by ``rig.evidence.run_folder``, as the HTML report reads it. A test's
timeline (``rig.evidence.timeline``) becomes:

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

from pathlib import Path
from typing import Any

from rig.bench_page.actions import ACTIONS, ActionUnavailable
from rig.bench_page.hub import Event, annotate
from rig.evidence.run_folder import RunFolder, TestFolder, open_run, read_run
from rig.report.echo_lanes import EchoLanes
from rig.report.text import payload_bytes, payload_label

STATUS_VALUES = ("online", "offline", "lost")
# Why a replay's buttons are greyed out: the board of a finished run is not there to act on.
FINISHED = "a finished run: there is no board to act on"


class ReplaySource:
    """The tests of one finished run that have a timeline to replay, read from disk on each
    call (a run still going shows the tests it has so far) by ``rig.evidence.run_folder``.
    Made with the artifacts folder, a folder of several boards' runs, or one test's folder;
    raises ``NotARunFolder`` (naming the path) when there is nothing of a run in it. What the
    reader could not read (a broken run.json) is in ``problems``: the timelines are still
    worth seeing, without their outcomes."""

    def __init__(self, artifacts_dir: Path) -> None:
        self.folder = Path(artifacts_dir)
        self._check(open_run(self.folder))

    def _check(self, run: RunFolder) -> RunFolder:
        self.problems = [str(p) for p in run.problems]
        return run

    def info(self) -> dict[str, Any]:
        """What the page shows in its header for this run (``BenchServer``'s ``info``)."""
        run = self._check(read_run(self.folder))
        return {
            "mode": "replay",
            "board": ", ".join(run.boards()) or self.folder.name,
            "artifacts": str(self.folder),
            "problems": self.problems,
        }

    def tests(self) -> list[TestFolder]:
        """The run's tests that have a timeline (or an MQTT trace), in the order the run
        recorded them, then any it did not record, by folder."""
        return [t for t in self._check(read_run(self.folder)).tests if t.source is not None]

    def test_events(self, test_id: str) -> tuple[TestFolder, list[Event]]:
        """The test and its timeline as hub events, in time order; ``UnknownTest`` or
        ``UnreadableTimeline`` naming the path."""
        test = self._check(read_run(self.folder)).test(test_id)
        return test, timeline_events(test.read_entries())


def timeline_events(entries: list[dict[str, Any]]) -> list[Event]:
    """Timeline entries as hub events (see the module docstring), sorted by time and annotated
    as the live hub annotates them (``hub.annotate``); entries without a usable time are left
    out."""
    events: list[Event] = []
    for entry in entries:
        t = entry.get("t")
        if not isinstance(t, int | float) or isinstance(t, bool):
            continue
        events.extend(_events_of(float(t), entry))
    events.sort(key=lambda e: float(e["t"]))
    # As the live hub does: the page gets the same facts, whether live or replayed.
    lanes = EchoLanes()
    return [annotate(event, lanes) for event in events]


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
