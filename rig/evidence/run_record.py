"""``run.json``: one run of the suite on one board, rewritten after every test.

Layout of a run's artifact folder (``--rig-artifacts``)::

    run.json                      this record
    junit.xml                     when pytest ran with --junitxml there (rig gate does)
    session/                      serial-<board>.log, broker/, deploy.json, pids.json, flash-*/
    <test folder>/                serial.log, mqtt.jsonl, broker.log, timeline.jsonl, timeline.txt

``run.json``::

    {"rig_version": "0.1.0", "started": 1700000000.0, "finished": 1700000100.0 | null,
     "board": {"name": "virtual", "kind": "virtual", "serial_number": null, "port": "/dev/pts/3"},
     "firmware": {"tree_hash": "…", "version": "1.0.0", "mpy": "1.29.0", "platform": "linux"},
     "broker": {"kind": "mosquitto", "host": "127.0.0.1", "port": 40000},
     "tests": [{"nodeid": "tests/hil/test_x.py::test_y", "name": "test_y",
                "outcome": "passed" | "failed" | "error" | "skipped",
                "infrastructure": false, "duration": 1.23, "message": "first lines of the failure",
                "artifacts": "tests_hil_test_x.py_test_y", "started": 1700000001.0,
                "properties": {"board": "virtual", ...}}]}

``artifacts`` is relative to the run folder. ``infrastructure`` is true when the rig, not the
firmware, failed (port vanished, board unreachable, broker down): a gate may retry those.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

OUTCOMES = ("passed", "failed", "error", "skipped")


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
    board: dict[str, Any] = field(default_factory=dict)
    firmware: dict[str, Any] = field(default_factory=dict)
    broker: dict[str, Any] = field(default_factory=dict)
    tests: list[TestRecord] = field(default_factory=list)

    def save(self, path: Path) -> None:
        """Atomically: a run killed mid-write leaves the previous, whole record."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".run-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(asdict(self), f, indent=1)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> RunRecord:
        doc = json.loads(path.read_text(encoding="utf-8"))
        tests = [TestRecord(**t) for t in doc.pop("tests", [])]
        return cls(**doc, tests=tests)
