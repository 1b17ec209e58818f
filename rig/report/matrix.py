"""The runtime matrix: one column per MicroPython runtime the boards ran, one row per test.

A release is gated on the runtime it ships with and on the next one in one run (``rig gate
--release``); the matrix says per test how it went on each runtime. A column is a runtime as the
boards read it (``rig.runtime.RuntimeIdentity``: version, build, port, variant), so two builds
of one version are two columns; the boards that ran it, and the release bundle they ran, are
named under it. A cell is the worst outcome among that runtime's boards, its tip names each.
A board whose runtime was never read (stopped before, or an older rig) has a column "unknown".
"""

from __future__ import annotations

from dataclasses import dataclass

from rig.evidence import junit_properties
from rig.report.detail import Entry
from rig.report.formatting import LABELS, outcome_kind
from rig.report.load import RunView
from rig.runtime.identity import RuntimeIdentity

UNKNOWN = "runtime unknown"
# Worst first: the cell of a runtime shows the worst outcome among its boards.
_WORST_FIRST = ("failed", "error", "infra", "skipped", "passed")
# How much of a bundle's hash a column shows (the tip has it whole).
SHOWN_HASH = 12


@dataclass(frozen=True)
class MatrixCell:
    kind: str
    label: str
    tip: str
    # The section of the worst test among the runtime's boards; empty for a test none of them ran.
    anchor: str


@dataclass(frozen=True)
class MatrixRow:
    nodeid: str
    cells: list[MatrixCell]


@dataclass(frozen=True)
class RuntimeColumn:
    # ``1.29.0-preview (9458e3a23f on 2026-07-05), port linux, variant standard``
    runtime: str
    boards: str
    # The release bundle(s) the boards ran, hashes cut to SHOWN_HASH; "" for a firmware tree.
    release: str
    release_full: str


@dataclass(frozen=True)
class RuntimeMatrix:
    columns: list[RuntimeColumn]
    rows: list[MatrixRow]


def runtime_name(identity: RuntimeIdentity | None) -> str:
    """What tells one runtime from another on the page: version, build, port, variant (the
    machine string names the C compiler on the unix port, not what the firmware runs on)."""
    if identity is None:
        return UNKNOWN
    build = f" ({identity.build})" if identity.build else ""
    variant = f", variant {identity.variant}" if identity.variant else ""
    return f"{identity.implementation} {identity.version}{build}, port {identity.port}{variant}"


def release_of(run: RunView) -> list[str]:
    """The release bundle hashes a run deployed (``run.json``'s ``release``, and what its tests'
    ``release_bundle`` properties name), each once, in order."""
    found = [run.record.release if run.record is not None else ""]
    found += (t.record.properties.get(junit_properties.RELEASE_BUNDLE, "") for t in run.tests)
    return list(dict.fromkeys(h for h in found if isinstance(h, str) and h))


def runtime_matrix(runs: list[RunView], entries: list[Entry]) -> RuntimeMatrix:
    """The matrix of ``runs``: columns in the order their runtimes first appear. Empty (no
    column, no row) when no run read its runtime: the grid by board then says it all."""
    if not any(run.record is not None and run.record.runtime is not None for run in runs):
        return RuntimeMatrix([], [])
    by_runtime: dict[str, list[int]] = {}
    for index, run in enumerate(runs):
        runtime = runtime_name(run.record.runtime if run.record is not None else None)
        by_runtime.setdefault(runtime, []).append(index)
    columns = []
    for runtime, indices in by_runtime.items():
        hashes = list(dict.fromkeys(h for i in indices for h in release_of(runs[i])))
        columns.append(
            RuntimeColumn(
                runtime=runtime,
                boards=", ".join(runs[i].board_name for i in indices),
                release=", ".join(h[:SHOWN_HASH] for h in hashes),
                release_full=", ".join(hashes),
            )
        )
    # A test run twice in one run (a rerun) counts by its last result, as in the grid.
    last = {(e.run_index, e.test.record.nodeid): e for e in entries}
    nodeids = list(dict.fromkeys(e.test.record.nodeid for e in entries))
    rows = []
    for nodeid in nodeids:
        cells = []
        for indices in by_runtime.values():
            ran = [last[(i, nodeid)] for i in indices if (i, nodeid) in last]
            cells.append(_cell(ran))
        rows.append(MatrixRow(nodeid, cells))
    return RuntimeMatrix(columns, rows)


def _cell(ran: list[Entry]) -> MatrixCell:
    if not ran:
        return MatrixCell("missing", LABELS["missing"], "not run on this runtime", "")
    kinds = [outcome_kind(e.test.record) for e in ran]
    worst = min(range(len(ran)), key=lambda i: _rank(kinds[i]))
    tip = ", ".join(f"{e.run.board_name}: {kind}" for e, kind in zip(ran, kinds, strict=True))
    return MatrixCell(kinds[worst], LABELS.get(kinds[worst], kinds[worst]), tip, ran[worst].anchor)


def _rank(kind: str) -> int:
    return _WORST_FIRST.index(kind) if kind in _WORST_FIRST else 0
