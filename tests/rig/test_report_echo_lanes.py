"""The echo loop's lanes (``rig.report.echo_lanes``): their rules, and that the report's plot and
the bench page get the same lanes from them, the page's script having no rule of its own."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import rig.bench_page
from rig.bench_page.hub import EventHub
from rig.bench_page.replay import ReplaySource
from rig.report import echo_lanes
from rig.report.echo_lanes import MAX_FOLLOWED, MAX_LANES, PALETTE, STOPPED_MIN_S, EchoLanes
from rig.report.echo_plot import echo_plot
from rig.report.load import load_run
from rig.report.traffic import mqtt_messages
from tests.rig.bench_browser import ECHO, ONE, write_run

BENCH_JS = Path(rig.bench_page.__file__).parent / "static" / "bench.js"


def test_echo_topics_strays_and_other_topics() -> None:
    lanes = EchoLanes(["foo_topic"])
    assert lanes.message(1.0, "out", "rig/b/echo", b"a") is not None  # an injection
    assert lanes.message(1.1, "in", "foo_topic", b"a") is not None  # named by the contract
    stray = lanes.message(1.2, "in", "rig/b/echo/elsewhere", b"a")
    assert stray is not None and stray.role == "stray" and stray.count == 1
    assert lanes.message(1.3, "in", "rig/b/status", b"online") is None
    assert lanes.message(1.4, "out", "rig/b/echo/elsewhere", b"a") is None  # only arrivals stray
    assert lanes.message(1.5, "in", "rig/b/echoes", b"a") is None


def test_lanes_in_order_of_first_appearance_with_the_palettes_colours() -> None:
    lanes = EchoLanes()
    facts = [lanes.message(float(i), "in", ECHO, bytes([i % 10])) for i in range(20)]
    assert [f.lane for f in facts if f] == [i % 10 for i in range(20)]
    assert [f.colour for f in facts[:10] if f] == [PALETTE[i % len(PALETTE)] for i in range(10)]
    assert [lane.count for lane in lanes.lanes] == [2] * 10


def test_period_is_the_median_of_the_recent_intervals_and_a_lane_stops_after_a_few() -> None:
    lanes = EchoLanes()
    first = lanes.message(100.0, "in", ECHO, b"p")
    assert first is not None and first.period is None and first.rate == 0.0
    assert first.stale_after == 100.0 + STOPPED_MIN_S
    # A slow start, then 30 turns at 0.5 s: the period is what the loop does now.
    t = 100.0
    for gap in [4.0] * 5 + [0.5] * 30:
        t += gap
        last = lanes.message(t, "in", ECHO, b"p")
    assert last is not None and last.count == 36
    assert last.period == pytest.approx(0.5) and last.rate == pytest.approx(2.0)
    assert last.stale_after == pytest.approx(t + STOPPED_MIN_S)  # 3 periods is less than the floor
    slow = EchoLanes()
    for i in range(5):
        slow_facts = slow.message(10.0 * i, "in", ECHO, b"s")
    assert slow_facts is not None and slow_facts.stale_after == pytest.approx(40.0 + 3 * 10.0)


def test_lanes_past_the_limits_are_not_drawn_nor_followed() -> None:
    lanes = EchoLanes()
    facts = [lanes.message(1.0, "in", ECHO, str(i).encode()) for i in range(MAX_FOLLOWED + 5)]
    assert [f.drawn for f in facts[: MAX_LANES + 1] if f] == [True] * MAX_LANES + [False]
    assert facts[MAX_FOLLOWED - 1] is not None and facts[MAX_FOLLOWED:] == [None] * 5
    assert len(lanes.lanes) == MAX_FOLLOWED


def test_the_report_and_the_page_get_the_same_lanes(tmp_path: Path) -> None:
    run = write_run(tmp_path)
    test = load_run(run).tests[0]
    plot = echo_plot(mqtt_messages(test.entries), test.record.started)
    assert plot is not None
    _, events = ReplaySource(run).test_events(ONE)
    last: dict[int, dict[str, object]] = {}
    for event in events:
        if "echo" in event:
            last[event["echo"]["lane"]] = event["echo"]
    assert [lane.colour for lane in plot.lanes] == [last[i]["colour"] for i in sorted(last)]
    counts = [int(re.match(r"(\d+) in", lane.summary).group(1)) for lane in plot.lanes]  # type: ignore[union-attr]
    assert counts == [last[i]["count"] for i in sorted(last)] == [3, 1]
    assert "every 0.100 s" in plot.lanes[0].summary and last[0]["period"] == pytest.approx(0.1)
    # The live hub gives the same facts for the same messages.
    hub = EventHub()
    for event in events:
        if event["kind"] in ("mqtt", "action"):
            fields = {k: v for k, v in event.items() if k not in ("kind", "t", "echo")}
            hub.publish(event["kind"], event["t"], **fields)
    live = [e["echo"] for e in hub.history() if "echo" in e]
    assert live == [e["echo"] for e in events if "echo" in e]


def test_the_hub_marks_the_firmwares_event_lines() -> None:
    hub = EventHub()
    hub.publish("console", text="(b'rig/b/echo', b'hello')")
    hub.publish("console", text='@rig {"ev": "received", "hex": "68656c6c6f"}')
    hub.publish("console", text='>>> @rig {"ev": "idle"}')
    hub.publish("console", text="@rig not json")
    assert [e.get("rig_event") for e in hub.history()] == [None, "received", "idle", None]


def test_the_pages_script_has_no_palette_nor_lane_rule_of_its_own() -> None:
    script = BENCH_JS.read_text(encoding="utf-8")
    colours = [c for c in PALETTE if c.lower() in script.lower()]
    assert not colours, f"{BENCH_JS} names the lanes' colours {colours}: they come from {echo_lanes.__file__}"
    assert not re.search(r"\[\s*\"#[0-9a-fA-F]{6}\"\s*,", script), f"{BENCH_JS} has a list of colours"
    for rule in ("PALETTE", '"/echo"', "median", "MAX_LANES", "MAX_FOLLOWED"):
        assert rule not in script, f"{BENCH_JS} has {rule}: the lanes' rules are {echo_lanes.__file__}'s"
    for fact in ("facts.colour", "facts.count", "facts.period", "facts.rate", "facts.stale_after"):
        assert fact in script, f"{BENCH_JS} does not draw {fact} from the rig's facts"
