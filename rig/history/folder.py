"""Runs read from the folders the rig leaves: one pytest run's (``run.json``) or a gate's output
folder (one run folder per board and attempt). ``rig history import`` and the gate's own
writer both read folders here, so a gate written at its end and imported later is one run.

The figures are the tests' properties whose name ends in a known unit (``FIGURE_UNITS``):
``fault.wifi.detect_s``, ``boot_to_connected_s``, ``heap_bytes_per_message``,
``echo_gap_ratio``; other properties (runtime, notes) are not figures.
"""

from __future__ import annotations

import hashlib
import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from rig.errors import ConfigError
from rig.evidence.junit_properties import FLAKY, QUARANTINED_OUTCOME
from rig.evidence.run_record import RunRecord, TestRecord
from rig.history.records import Failure, FigureIn, ResultIn, RunIn

RUN_JSON = "run.json"
GATE_JUNIT = "junit.xml"  # the gate's merged JUnit (rig.gate.junit)
GATE_MARKER = ".rig-gate"  # rig.gate.layout.MARKER: the gate layer is above this one
# Longest suffix first: the unit of a property, by how its name ends.
FIGURE_UNITS = (
    ("_bytes_per_message", "bytes/message"),
    ("_bytes", "bytes"),
    ("_ratio", "ratio"),
    ("_samples", "count"),
    ("_s", "s"),
)
# The folder of a board's retry: ``OUT/NAME-retryN`` (rig.gate.layout.run_folder).
_RETRY = re.compile(r"-retry\d+$")
# A result of a run that left no run.json: nothing says which test, so the run itself failed.
RUN_NODEID = "(run)"


def figures(properties: dict[str, str]) -> tuple[FigureIn, ...]:
    found = []
    for name, value in properties.items():
        unit = next((u for suffix, u in FIGURE_UNITS if name.endswith(suffix)), None)
        if unit is None:
            continue
        try:
            number = float(value)
        except ValueError:
            continue
        if math.isfinite(number):
            found.append(FigureIn(name, number, unit))
    return tuple(found)


# A failure the quarantine file shielded (rig.flaky: pytest's XFAIL, "skipped" in run.json with
# the property quarantined_outcome): stored as what it is, never as a skip.
QUARANTINED = "quarantined"


def failure_of(test: TestRecord) -> Failure:
    if test.outcome in ("failed", "error") or outcome_of(test) == QUARANTINED:
        return "infrastructure" if test.infrastructure else "firmware"
    return "none"


def outcome_of(test: TestRecord) -> str:
    # rig.flaky's rerun that passed: stored as flaky, never as a plain pass (the trends page
    # shows it); the first attempt itself is in no run.json.
    if test.outcome == "passed" and FLAKY in test.properties:
        return FLAKY
    if test.outcome == "skipped" and QUARANTINED_OUTCOME in test.properties:
        return QUARANTINED
    return test.outcome


def _result(board: str, test: TestRecord) -> ResultIn:
    return ResultIn(
        board=board,
        nodeid=test.nodeid,
        outcome=outcome_of(test),
        failure=failure_of(test),
        duration=test.duration,
        message=test.properties[FLAKY] if outcome_of(test) == FLAKY else test.message,
        started=test.started or None,
        figures=figures(test.properties),
    )


def _load(folder: Path) -> RunRecord:
    path = folder / RUN_JSON
    try:
        # Lenient: a folder written by a newer rig still gives what this one understands.
        return RunRecord.load(path, strict=False)
    except (OSError, ValueError) as e:
        raise ConfigError(str(path), "run.json", f"not a run record: {e}") from e


def read_run_folder(folder: Path, *, commit: str = "", host: str = "", board: str = "") -> RunIn:
    """One pytest run's folder. Its key is the board and the start time run.json names. A run
    whose tests never opened a board names none: then ``board``, else the folder's name."""
    record = _load(folder)
    board = record.board.name or board or folder.name
    return RunIn(
        key=f"pytest:{board}:{record.started:.6f}",
        kind="pytest",
        started=record.started,
        ended=record.finished,
        commit=commit,
        tree_hash=record.firmware.tree_hash,
        release=record.release,
        runtime=record.runtime.describe() if record.runtime is not None else "",
        host=host,
        rig_version=record.rig_version,
        source=str(folder.resolve()),
        results=tuple(_result(board, t) for t in record.tests),
    )


def is_gate_folder(folder: Path) -> bool:
    return (folder / GATE_MARKER).is_file()


def read_gate_folder(out: Path, *, commit: str = "", host: str = "") -> RunIn:
    """A gate's output folder: every board's attempts as one run. An attempt folder without
    run.json (its pytest was killed before writing it), and a final attempt the gate judged a
    failed run (timed out, killed, unfinished), is one infrastructure result, ``(run)``. The
    key is the gate's start (its marker's time) and its attempts' keys."""
    started = (out / GATE_MARKER).stat().st_mtime
    parts: list[RunIn] = []
    lost: dict[str, ResultIn] = {}
    for folder in sorted(p for p in out.iterdir() if p.is_dir()):
        if (folder / RUN_JSON).is_file():
            parts.append(read_run_folder(folder, board=_RETRY.sub("", folder.name)))
        else:
            lost[folder.name] = ResultIn(
                board=_RETRY.sub("", folder.name),
                nodeid=RUN_NODEID,
                outcome="error",
                failure="infrastructure",
                message=f"the run left no {RUN_JSON} in {folder.name}",
            )
    runs_lost = _with_gate_problems(out, lost, [p.name for p in sorted(out.iterdir()) if p.is_dir()])
    ident = "\n".join([f"{started:.6f}", *(p.key for p in parts), *(r.message for r in runs_lost)])
    first = parts[0] if parts else None
    return RunIn(
        key="gate:" + hashlib.sha256(ident.encode()).hexdigest()[:32],
        kind="gate",
        started=min([started, *(p.started for p in parts)]),
        ended=max((p.ended for p in parts if p.ended is not None), default=None),
        commit=commit,
        tree_hash=first.tree_hash if first else "",
        release=first.release if first else "",
        runtime=", ".join(sorted({p.runtime for p in parts if p.runtime})),
        host=host,
        rig_version=first.rig_version if first else "",
        source=str(out.resolve()),
        results=tuple(r for p in parts for r in p.results) + tuple(runs_lost),
    )


def _with_gate_problems(out: Path, lost: dict[str, ResultIn], folders: list[str]) -> list[ResultIn]:
    """``lost`` with what the gate said of each board's final run (its merged junit.xml's
    ``rig.gate`` ``board-run`` error: "timed out after 60s, killed", "pytest died of SIGKILL"):
    the message of that run's result, or a result of its own where the run left run.json."""
    problems: dict[str, str] = {}
    try:
        root = ET.parse(out / GATE_JUNIT).getroot()
    except (OSError, ET.ParseError):
        root = None  # a gate killed before it merged: the folders are all there is
    for suite in root.iter("testsuite") if root is not None else ():
        for case in suite.iter("testcase"):
            error = case.find("error")
            if case.get("classname") == "rig.gate" and case.get("name") == "board-run" and error is not None:
                problems[suite.get("name", "")] = error.get("message", "")
    for board, problem in problems.items():
        attempts = [f for f in folders if f == board or _RETRY.sub("", f) == board]
        final = max(attempts, key=_retry_number, default=board)
        lost[final] = ResultIn(board, RUN_NODEID, "error", "infrastructure", message=f"{final}: {problem}")
    return list(lost.values())


def _retry_number(folder: str) -> int:
    found = _RETRY.search(folder)
    return int(found.group(0).removeprefix("-retry")) if found else 0


def read_folder(folder: Path, *, commit: str = "", host: str = "") -> RunIn:
    """A gate's output folder or one run's folder, whichever ``folder`` is."""
    if is_gate_folder(folder):
        return read_gate_folder(folder, commit=commit, host=host)
    return read_run_folder(folder, commit=commit, host=host)


def run_folders(paths: list[Path]) -> list[Path]:
    """The run folders under ``paths``: a gate's folder counts as one (its boards are inside);
    elsewhere every folder holding run.json. A path holding neither is a ConfigError."""
    found: list[Path] = []
    for path in paths:
        if not path.is_dir():
            raise ConfigError(str(path), "ARTIFACTS", "not a folder")
        if is_gate_folder(path) or (path / RUN_JSON).is_file():
            found.append(path)
            continue
        inner = sorted(
            {p.parent for p in path.rglob(RUN_JSON) if not is_gate_folder(p.parent.parent)}
            | {p.parent for p in path.rglob(GATE_MARKER)}
        )
        if not inner:
            raise ConfigError(str(path), "ARTIFACTS", f"holds no {RUN_JSON} and no gate output")
        found.extend(inner)
    return found


def git_commit(start: Path) -> str:
    """The commit checked out at ``start`` or above, read from .git itself (no git process:
    the writer runs inside pytest and the gate); "" outside a repository."""
    for folder in [start.resolve(), *start.resolve().parents]:
        git = folder / ".git"
        if not git.is_dir():
            continue
        try:
            head = (git / "HEAD").read_text().strip()
            if not head.startswith("ref: "):
                return head
            ref = head.removeprefix("ref: ")
            if (git / ref).is_file():
                return (git / ref).read_text().strip()
            for line in (git / "packed-refs").read_text().splitlines():
                if line.endswith(" " + ref):
                    return line.split()[0]
        except OSError:
            return ""
        return ""
    return ""
