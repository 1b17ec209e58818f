"""Small conversions shared by the page's parts: outcome kinds and their labels, times, links.

Records may come from an old, newer or hand-edited run.json, so nothing here trusts a type.
"""

from __future__ import annotations

import datetime
import os
import urllib.parse
from pathlib import Path

from rig.evidence.run_record import TestRecord

LABELS = {
    "passed": "PASS",
    "failed": "FAIL",
    "error": "ERROR",
    "infra": "INFRA",
    "skipped": "SKIP",
    "missing": "—",
}
FAILURE_KINDS = ("failed", "error", "infra")


def outcome_kind(record: TestRecord) -> str:
    """passed, failed (the firmware), error, infra (the rig failed), skipped or unknown."""
    if record.outcome in ("failed", "error") and record.infrastructure:
        return "infra"
    return record.outcome if record.outcome in LABELS else "error"


def href(path: Path, base: Path) -> str:
    """A link that keeps working when the report and the runs are moved together."""
    try:
        rel = os.path.relpath(path.absolute(), base.absolute())
    except ValueError:  # Windows: another drive has no relative path
        return path.absolute().as_uri()
    return urllib.parse.quote(Path(rel).as_posix())


def num(value: object) -> float:
    """A number from a record that may hold anything (an old or hand-edited run.json)."""
    return float(value) if isinstance(value, (int, float)) else 0.0


def when(t: object) -> str:
    if not num(t):
        return "unknown"
    return datetime.datetime.fromtimestamp(num(t)).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def duration(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def shown(facts: list[tuple[str, object]]) -> list[tuple[str, object]]:
    """The facts worth a row: an unknown value is left out rather than shown empty."""
    return [(k, v) for k, v in facts if v not in (None, "")]
