"""The gate's HTML report over the final run folder of every board, as a best effort."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def write_report(runs: Sequence[Path], out: Path, title: str) -> tuple[Path | None, str | None]:
    """The HTML report and None, or None and why it was not written. The verdicts are decided
    before this: a report that cannot be written is a warning, never a different verdict."""
    if not runs:
        return None, "no board ran"
    try:
        from rig.report import write_html_report
    except ImportError as e:
        return None, f"the HTML report is not available in this rig ({e})"
    try:
        return write_html_report(runs, out, title), None
    except Exception as e:  # a bug in the report must not take the gate's verdicts with it
        return None, f"{type(e).__name__}: {e}"
