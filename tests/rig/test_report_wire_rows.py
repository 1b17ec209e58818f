"""The report shows what the wire carried: a run folder made by the rig's own wire witness
(``rig.wire.witness.WireWitness`` reading a capture file, writing the test's timeline and
``wire.pcap``) renders as timeline rows with type, flags and topic, a reset and a malformed
packet highlighted, and ``wire.pcap`` linked."""

from __future__ import annotations

from pathlib import Path

from rig.evidence.run_record import BoardInfo, RunRecord
from rig.evidence.run_record import TestRecord as Record
from rig.evidence.timeline import Timeline
from rig.report import write_html_report
from rig.wire.capture import WireCapture
from rig.wire.pcap import write_frames
from rig.wire.witness import WireWitness
from tests.rig.test_report import parse, section
from tests.rig.test_wire_decode import BOARD_IP, PORT, Link, publish

NODE = "tests/hil/test_wire_witness.py::test_the_echo_leaves_the_board_at_the_injected_qos_and_not_retained"


def run_folder(root: Path) -> Path:
    """One failed test whose wire shows a retained QoS 1 echo, a malformed packet and a reset."""
    run, folder = root / "run", root / "run" / "echo"
    folder.mkdir(parents=True)
    link = Link()
    frames = [
        link.frame("board", publish(b"rig/v/echo", b"hello", qos=1, retain=1, msgid=7)),
        link.frame("broker", b"\x30\xff\xff\xff\xff\x01"),
        link.frame("board", flags="R"),
    ]
    timeline = Timeline(folder)
    capture = WireCapture("unused", BOARD_IP, {PORT: False})  # never started: fed the file below
    try:
        witness = WireWitness(
            capture, folder, add_to_timeline=lambda t, src, text, f: timeline.add(t, src, text, wire=f)
        )
        raw = root / "session-0.pcap"
        write_frames(raw, frames)
        capture.files.append(raw)  # as tcpdump would have written it during the test
        witness.close()
    finally:
        capture.stop()
        timeline.close()
    record = RunRecord(
        rig_version="0.1.0", started=99.0, finished=101.0, board=BoardInfo("virtual", "virtual")
    )
    record.tests.append(Record(NODE, "echo", "failed", 1.0, message="boom", artifacts="echo", started=100.0))
    record.save(run / "run.json")
    return run


def test_the_report_shows_the_wire_rows_and_links_the_capture(tmp_path: Path) -> None:
    out = write_html_report([run_folder(tmp_path)], tmp_path / "site" / "report.html", title="wire")
    html = out.read_text(encoding="utf-8")
    page = parse(out)
    rows = [r for r in page.find("tr") if "src-wire" in r.attrs.get("class", "").split()]
    assert len(rows) == 3, html
    assert [r.attrs["class"].split().count("alert") for r in rows] == [0, 1, 1]
    anchor = next(t.attrs["id"] for t in page.find("details") if "id" in t.attrs)
    shown = section(html, anchor)
    assert "board&gt; PUBLISH qos=1 retain=1 dup=0 topic=&#39;rig/v/echo&#39; payload=5B id=7" in shown, shown
    assert "malformed MQTT from the broker" in shown and "connection reset by the board" in shown
    links = [t.attrs["href"] for t in page.find("a") if t.attrs.get("href", "").endswith("wire.pcap")]
    assert links and (out.parent / links[0]).resolve() == (tmp_path / "run" / "echo" / "wire.pcap")
