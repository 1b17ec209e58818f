"""Where a board's pytest run is now, for the gate's live status line: a small pytest plugin.

The gate loads it into each board's pytest (``-p rig.gate.progress --rig-gate-progress=FILE``).
It rewrites FILE, a small JSON object, whenever the run moves: collected, a test started, a
test's outcome known, the run finished. The gate's status display reads the file; nothing
else does, and the verdicts never come from it (they come from run.json, as before).

The file is replaced by a rename, so a reader sees the old content or the new, never half. It
is not fsynced: it is a display's input, rewritten a few times per test, and a crash loses
nothing the verdicts need.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

OPTION = "--rig-gate-progress"
_KEY = pytest.StashKey["ProgressFile"]()
# Which outcome a test keeps when its phases differ: the worst, as run.json folds them.
_SEVERITY = {"passed": 0, "skipped": 1, "failed": 2, "error": 3}


@dataclass
class Progress:
    """A board run's progress as the file holds it."""

    collected: int | None = None
    current: str = ""  # the node id of the test running now; empty between tests
    outcomes: dict[str, str] = field(default_factory=dict)  # node id -> outcome so far
    finished: bool = False

    @property
    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for outcome in self.outcomes.values():
            counts[outcome] = counts.get(outcome, 0) + 1
        return counts

    def to_json(self) -> str:
        return json.dumps(
            {
                "collected": self.collected,
                "current": self.current,
                "counts": self.counts,
                "finished": self.finished,
            }
        )


@dataclass(frozen=True)
class ProgressView:
    """What a reader gets back from the file."""

    collected: int | None
    current: str
    counts: dict[str, int]
    finished: bool


def read_progress(path: Path) -> ProgressView | None:
    """The progress in ``path``; None when there is none yet, or it is not a progress file."""
    try:
        raw: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(raw, dict):
        return None
    collected = raw.get("collected")
    counts = raw.get("counts")
    if not isinstance(counts, dict) or not all(isinstance(v, int) for v in counts.values()):
        return None
    return ProgressView(
        collected=collected if isinstance(collected, int) else None,
        current=str(raw.get("current") or ""),
        counts={str(k): v for k, v in counts.items()},
        finished=bool(raw.get("finished")),
    )


class ProgressFile:
    """The writer: one per pytest run, fed by the hooks below."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.progress = Progress()
        self._last = ""

    def write(self) -> None:
        text = self.progress.to_json()
        if text == self._last:
            return
        temp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            temp.write_text(text, encoding="utf-8")
            os.replace(temp, self.path)
        except OSError:
            # A display's input: a full disk must not fail the run it describes.
            with contextlib.suppress(OSError):
                temp.unlink()
            return
        self._last = text


# The writers of the runs configured in this process, for the hooks pytest calls without a
# config (logstart, logreport); a pytest process has one, an in-process inner run a second.
_WRITERS: list[ProgressFile] = []


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(OPTION, dest="rig_gate_progress", default=None, help="(rig gate) progress file to keep")


def pytest_configure(config: pytest.Config) -> None:
    path = config.getoption("rig_gate_progress")
    if path:
        writer = ProgressFile(Path(path))
        config.stash[_KEY] = writer
        _WRITERS.append(writer)
        writer.write()


def _writer(config: pytest.Config) -> ProgressFile | None:
    return config.stash.get(_KEY, None)


def pytest_collection_finish(session: pytest.Session) -> None:
    writer = _writer(session.config)
    if writer is not None:
        writer.progress.collected = len(session.items)
        writer.write()


def pytest_runtest_logstart(nodeid: str, location: tuple[str, int | None, str]) -> None:
    # No config here: pytest calls this hook with the node id alone.
    for writer in _WRITERS:
        writer.progress.current = nodeid
        writer.write()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    outcome = "error" if report.when != "call" and report.failed else str(report.outcome)
    # A setup or teardown that passed says nothing about the test's outcome.
    counts = report.when == "call" or outcome != "passed"
    for writer in _WRITERS:
        known = writer.progress.outcomes.get(report.nodeid)
        if counts and (known is None or _SEVERITY[outcome] > _SEVERITY[known]):
            writer.progress.outcomes[report.nodeid] = outcome
        if report.when == "teardown":
            writer.progress.current = ""
        writer.write()


def pytest_sessionfinish(session: pytest.Session) -> None:
    writer = _writer(session.config)
    if writer is not None:
        writer.progress.current = ""
        writer.progress.finished = True
        writer.write()


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    writer = _writer(config)
    if writer is not None and writer in _WRITERS:
        _WRITERS.remove(writer)
