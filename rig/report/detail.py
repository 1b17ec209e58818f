"""One test's section of the page as data: properties, artifacts, topics, the echo plot and the
timeline rows. ``templates/test.html.j2`` draws it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rig.evidence import junit_properties
from rig.evidence.run_record import TestRecord
from rig.report.echo_plot import EchoPlot, echo_plot
from rig.report.formatting import FAILURE_KINDS, LABELS, href, num, outcome_kind, shown, when
from rig.report.load import RunView, TestView
from rig.report.text import payload_label
from rig.report.timeline_rows import Row, timeline_rows
from rig.report.traffic import MqttMessage, mqtt_messages, topic_counts

# The files of a test folder worth a link, in the order a person opens them.
KNOWN_ARTIFACTS = ("timeline.txt", "serial.log", "mqtt.jsonl", "broker.log")
# The machine form of timeline.txt: the page shows its content already.
UNLISTED_ARTIFACTS = frozenset({"timeline.jsonl"})
SOURCES = ("serial", "mqtt", "broker", "rig", "wire")


@dataclass(frozen=True)
class Entry:
    """One test of one run, with the anchor of its section."""

    run_index: int
    run: RunView
    test: TestView
    anchor: str


@dataclass(frozen=True)
class Link:
    href: str
    text: str


@dataclass(frozen=True)
class MqttText:
    arrow: str
    topic: str
    payload: str
    hex: str
    flags: str


@dataclass(frozen=True)
class RowView:
    classes: str
    t: str
    badge: str
    label: str
    text: str
    mqtt: MqttText | None
    why: str


@dataclass(frozen=True)
class Timeline:
    note: str
    table_id: str
    sources: list[str]
    head: list[RowView]
    hidden: int
    # Where the whole timeline is when rows are hidden; None when timeline.txt is missing.
    full: Link | None
    tail: list[RowView]


@dataclass(frozen=True)
class Section:
    anchor: str
    kind: str
    label: str
    nodeid: str
    board: str
    duration: float
    is_open: bool
    outcome: str
    message: str
    facts: list[tuple[str, object]]
    # None: no artifact folder was recorded; empty: the folder is empty.
    artifacts: list[Link] | None
    topics: list[tuple[str, int, int]]
    plot: EchoPlot | None
    timeline: Timeline


def section(entry: Entry, base: Path) -> Section:
    rec, test, run = entry.test.record, entry.test, entry.run
    kind = outcome_kind(rec)
    duration = num(rec.duration)
    start = _start(rec, test)
    facts: list[tuple[str, object]] = [
        ("outcome", rec.outcome + (" (infrastructure)" if rec.infrastructure else "")),
        ("duration", f"{duration:.3f} s"),
        ("started", when(start) if start else "unknown"),
        *_properties(run, rec),
    ]
    messages = mqtt_messages(test.entries)
    end = num(rec.started) + duration - start if num(rec.started) > 0 else 0.0
    return Section(
        anchor=entry.anchor,
        kind=kind,
        label=LABELS[kind],
        nodeid=rec.nodeid,
        board=run.board_name,
        duration=duration,
        is_open=kind in FAILURE_KINDS,
        outcome=rec.outcome,
        message=rec.message or "",
        facts=shown(facts),
        artifacts=_artifacts(test, base),
        topics=topic_counts(messages),
        plot=echo_plot(messages, start, end),
        timeline=_timeline(entry, start, base),
    )


def _properties(run: RunView, rec: TestRecord) -> list[tuple[str, object]]:
    """The test's own properties, completed from the run: the page must say which board and
    firmware (and which locked library versions) a result is about even when the test recorded
    nothing."""
    props: dict[str, object] = {}
    if run.record is not None:
        board, fw = run.record.board, run.record.firmware
        # The names the plugin gives these as JUnit properties, so that the two merge.
        props = {
            "board": board.name,
            "serial_number": board.serial_number,
            "port": board.port,
            "micropython": fw.mpy,
            "firmware_version": fw.version,
            "firmware_tree_hash": fw.tree_hash,
            junit_properties.FIRMWARE_DEPENDENCIES: fw.dependency_summary(),
        }
    if isinstance(rec.properties, dict):
        props.update(rec.properties)
    return list(props.items())


def _artifacts(test: TestView, base: Path) -> list[Link] | None:
    if test.folder is None:
        return None
    present = [test.folder / name for name in KNOWN_ARTIFACTS if (test.folder / name).is_file()]
    others = sorted(
        p
        for p in test.folder.iterdir()
        if p.is_file() and p.name not in KNOWN_ARTIFACTS and p.name not in UNLISTED_ARTIFACTS
    )
    return [Link(href(p, base), p.name) for p in present + others]


def _timeline(entry: Entry, start: float, base: Path) -> Timeline:
    rec, test = entry.test.record, entry.test
    kind = outcome_kind(rec)
    failure = (rec.message or rec.outcome) if kind in FAILURE_KINDS else ""
    failure_at = num(rec.started) + num(rec.duration) if num(rec.started) > 0 else None
    rows = timeline_rows(test.entries, start, failure, failure_at)
    present = {r.src for r in (*rows.head, *rows.tail)}
    full = test.folder / "timeline.txt" if test.folder else None
    return Timeline(
        note=test.timeline_note,
        table_id=f"tl-{entry.anchor}",
        sources=[s for s in SOURCES if s in present],
        head=[_row(r, kind) for r in rows.head],
        hidden=rows.hidden,
        full=Link(href(full, base), "timeline.txt") if full is not None and full.is_file() else None,
        tail=[_row(r, kind) for r in rows.tail],
    )


def _row(row: Row, kind: str) -> RowView:
    """One timeline row; ``kind`` is the test's outcome kind, which labels the verdict row."""
    src = row.src if row.src in (*SOURCES, "verdict") else "rig"
    verdict = src == "verdict"
    return RowView(
        classes=f"src-{src}" + (" alert" if row.alert else ""),
        t=f"{row.rel:.3f}" if row.rel is not None else "",
        badge=f"o-{kind}" if verdict else f"s-{src}",
        label=LABELS.get(kind, "FAIL") if verdict else row.src,
        text=row.text,
        mqtt=_mqtt_text(row.mqtt) if row.mqtt is not None else None,
        why=row.alert if row.alert and not verdict else "",
    )


def _mqtt_text(m: MqttMessage) -> MqttText:
    hex_text = m.payload.hex()
    return MqttText(
        arrow={"out": "→ out", "in": "← in"}.get(m.direction, m.direction),
        topic=m.topic,
        payload=payload_label(m.payload, 200),
        hex=f"{hex_text[:64]}…" if len(hex_text) > 64 else hex_text or "-",
        flags=(f" q{m.qos}" if m.qos is not None else "") + (" retained" if m.retain else ""),
    )


def _start(rec: TestRecord, test: TestView) -> float:
    """Time zero of a test's timeline: its recorded start, or its first entry when that is
    earlier (fixtures may log before the start is taken), so that times read as "since the
    test began" without negative numbers."""
    times = [float(test.entries[0]["t"])] if test.entries else []
    if num(rec.started) > 0:
        times.append(num(rec.started))
    return min(times, default=0.0)
