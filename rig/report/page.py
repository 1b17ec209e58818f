"""The page as data: the header's verdict and counts, the summary grid, and one section per
board holding its tests' sections. Python decides what the page says; the templates under
``templates/`` decide how it looks."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path

from rig.evidence import boot_time
from rig.report.conformance import ConformanceTable, conformance_tables
from rig.report.detail import Entry, Link, Section, section
from rig.report.formatting import LABELS, duration, href, num, outcome_kind, shown, when
from rig.report.load import RunView
from rig.report.matrix import RuntimeMatrix, release_of, runtime_matrix

# The legend under the header, in the order of the counts.
LEGEND = (
    ("passed", "passed"),
    ("failed", "the firmware failed the test"),
    ("error", "error in test setup/teardown"),
    ("infra", "the rig failed (port, board, broker): not the firmware"),
    ("skipped", "skipped"),
)


@dataclass(frozen=True)
class Header:
    verdict: str
    counts: list[tuple[str, int]]
    tests: int
    # The boards' names, joined here: every value goes through the templates' finalize alone.
    boards: str
    # The MicroPython runtimes the boards ran (``rig.runtime``), each once: "1.29.0-preview
    # (linux, standard) on virtual-1, virtual-2; ...", "unknown" when no run read one.
    runtimes: str
    # The release bundle(s) the runs deployed (``rig gate --release``), "" for a firmware tree.
    release: str
    when: str
    rig: str
    incomplete: int


@dataclass(frozen=True)
class Cell:
    kind: str
    label: str
    tip: str
    # The section the cell links to; empty for a test the board did not run.
    anchor: str


@dataclass(frozen=True)
class GridRow:
    nodeid: str
    cells: list[Cell]


@dataclass(frozen=True)
class RunSection:
    index: int
    name: str
    problem: str
    has_record: bool
    # "" while the run has not finished.
    finished: str
    facts: list[tuple[str, object]]
    links: list[Link]
    tests: list[Section]


@dataclass(frozen=True)
class Page:
    title: str
    generated: str
    header: Header
    columns: list[str]
    # Under each column's board name: the runtime it ran ("" when unknown), so that a run on
    # two runtimes shows a column for each.
    column_runtimes: list[str]
    grid: list[GridRow]
    # One column per runtime the boards ran (``rig.report.matrix``).
    matrix: RuntimeMatrix
    runs: list[RunSection]
    # The night-to-night page (``rig trends --out``) when one sits beside the report: its link.
    trends: str = ""
    # The broker scenarios' conformance table of each run that played them (rig.report.conformance).
    conformance: tuple[ConformanceTable, ...] = ()


# The trends page's name beside a report, linked from it when present (docs/history.md).
TRENDS_PAGE = "trends.html"


def page(runs: list[RunView], base: Path, title: str, generated: float) -> Page:
    """Everything the page shows; ``base`` is the folder the page will be in, for relative links."""
    entries = _entries(runs)
    return Page(
        title=title,
        generated=when(generated),
        header=_header(runs, entries),
        columns=[r.board_name for r in runs],
        column_runtimes=[runtime_label(r) for r in runs],
        grid=_grid(runs, entries),
        matrix=runtime_matrix(runs, entries),
        runs=[
            _run_section(i, run, [e for e in entries if e.run_index == i], base) for i, run in enumerate(runs)
        ],
        trends=TRENDS_PAGE if (base / TRENDS_PAGE).is_file() else "",
        conformance=tuple(conformance_tables(entries)),
    )


def _entries(runs: list[RunView]) -> list[Entry]:
    used: set[str] = set()
    entries = []
    for i, run in enumerate(runs):
        for test in run.tests:
            anchor = base = f"r{i}-" + re.sub(r"[^A-Za-z0-9_.-]+", "_", test.record.nodeid).strip("_")
            n = 2
            while anchor in used:
                anchor, n = f"{base}-{n}", n + 1
            used.add(anchor)
            entries.append(Entry(i, run, test, anchor))
    return entries


def _header(runs: list[RunView], entries: list[Entry]) -> Header:
    kinds = [outcome_kind(e.test.record) for e in entries]
    count = {k: kinds.count(k) for k in ("passed", "failed", "infra", "error", "skipped")}
    incomplete = [r for r in runs if r.record is None or r.record.finished is None]
    if count["failed"] or count["error"] or count["infra"]:
        verdict = "FAIL"
    elif incomplete:
        verdict = "INCOMPLETE"
    elif not entries:
        verdict = "EMPTY"
    else:
        verdict = "PASS"
    starts = [r.record.started for r in runs if r.record and num(r.record.started)]
    versions = sorted({str(r.record.rig_version) for r in runs if r.record})
    return Header(
        verdict=verdict,
        counts=[
            ("passed", count["passed"]),
            ("failed (firmware)", count["failed"]),
            ("infrastructure", count["infra"]),
            ("error", count["error"]),
            ("skipped", count["skipped"]),
        ],
        tests=len(entries),
        boards=", ".join(r.board_name for r in runs) or "none",
        runtimes=_runtimes(runs),
        release=", ".join(dict.fromkeys(h for r in runs for h in release_of(r))),
        when=when(min(starts)) if starts else "unknown",
        rig=", ".join(versions) or "unknown",
        incomplete=len(incomplete),
    )


def runtime_label(run: RunView) -> str:
    """``1.29.0-preview (linux, standard)``: the runtime a run's board ran, "" when unknown."""
    found = run.record.runtime if run.record is not None else None
    if found is None:
        return ""
    build = ", ".join(part for part in (found.port, found.variant) if part)
    return f"{found.version} ({build})" if build else found.version


def _runtimes(runs: list[RunView]) -> str:
    boards: dict[str, list[str]] = {}
    for run in runs:
        label = runtime_label(run)
        if label:
            boards.setdefault(label, []).append(run.board_name)
    return "; ".join(f"{label} on {', '.join(names)}" for label, names in boards.items()) or "unknown"


def _grid(runs: list[RunView], entries: list[Entry]) -> list[GridRow]:
    nodeids = list(dict.fromkeys(e.test.record.nodeid for e in entries))
    # A test run twice in one run (a rerun) is shown by its last result.
    cells = {(e.run_index, e.test.record.nodeid): e for e in entries}
    rows = []
    for nodeid in nodeids:
        row = []
        for i in range(len(runs)):
            entry = cells.get((i, nodeid))
            if entry is None:
                row.append(Cell("missing", LABELS["missing"], "not run on this board", ""))
                continue
            kind = outcome_kind(entry.test.record)
            tip = f"{entry.run.board_name}: {entry.test.record.outcome}" + (
                " (infrastructure)" if kind == "infra" else ""
            )
            row.append(Cell(kind, LABELS[kind], tip, entry.anchor))
        rows.append(GridRow(nodeid, row))
    return rows


def _run_section(index: int, run: RunView, entries: list[Entry], base: Path) -> RunSection:
    record = run.record
    facts: list[tuple[str, object]] = []
    finished = ""
    if record is not None:
        if record.finished is not None:
            took = duration(num(record.finished) - num(record.started))
            finished = f"finished {when(record.finished)} ({took})"
        facts = [
            ("run folder", run.folder),
            ("started", when(record.started)),
            ("rig version", record.rig_version),
        ]
        facts += [(f"board {k}", v) for k, v in asdict(record.board).items()]
        facts += [(f"firmware {k}", v) for k, v in asdict(record.firmware).items() if k != "dependencies"]
        # The locked library versions the firmware ran with, one "package version (source)" each.
        facts.append(("firmware dependencies", record.firmware.dependency_summary()))
        facts += [(f"broker {k}", v) for k, v in asdict(record.broker).items()]
        # What MicroPython the board ran, as it said so itself, and what the bench pinned.
        facts.append(("runtime", record.runtime.describe() if record.runtime else ""))
        facts.append(("runtime pin", record.runtime_pin))
        # From each reset to the broker's CONNECT of the firmware (rig.evidence.boot_time).
        facts.append(("boot to connected", boot_time.summary(record.boots)))
        facts.append(("release bundle", ", ".join(release_of(run))))
    return RunSection(
        index=index,
        name=run.board_name,
        problem=run.problem,
        has_record=record is not None,
        finished=finished,
        facts=shown(facts),
        links=_session_links(run.folder, base),
        tests=[section(e, base) for e in entries],
    )


def _session_links(folder: Path, base: Path) -> list[Link]:
    files = [folder / "run.json", folder / "junit.xml"]
    session = folder / "session"
    for sub in (session, session / "broker"):
        if sub.is_dir():
            files += sorted(p for p in sub.iterdir() if p.is_file())
    return [Link(href(p, base), p.relative_to(folder).as_posix()) for p in files if p.is_file()]
