"""``rig gate [--firmware DIR]``: the whole HIL suite on every board present; the nightly job and
the release gate. The running and judging is ``rig.gate``; this module reads its options and
turns its results into progress lines, verdict lines and an exit code."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rig import gate, settings
from rig.cli import common
from rig.cli.deploy import positive_seconds
from rig.cli.trends import store_gate_run
from rig.errors import ConfigError
from rig.history.writer import open_history

if TYPE_CHECKING:
    from rig.history.store import Store

HELP = "run the whole HIL suite on every board present and give one verdict (nightly job, release gate)"

EXIT_BY_CATEGORY = {
    gate.PASS: common.EXIT_OK,
    gate.FIRMWARE: common.EXIT_FAILED,
    gate.CONFIG: common.EXIT_USAGE,
    gate.INFRASTRUCTURE: common.EXIT_INFRASTRUCTURE,
}
# How many failed tests a verdict line names before it says "and N more".
NAMED_FAILURES = 5


def board_list(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"expected board names separated by commas, got {text!r}")
    return names


def jobs(text: str) -> int:
    """argparse type for --jobs: a whole number, 1 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of boards, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {text!r}")
    return value


def as_bundle(text: str, source: str, name: str) -> Path:
    """A release bundle's folder or .tar: it must exist (its contents are checked when read)."""
    path = Path(text).expanduser()
    if not path.exists():
        raise ConfigError(
            source, name, f"{text}: no such bundle folder or .tar (rig release build makes one)"
        )
    return path


def setup(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Runs the HIL suite on every board of the inventory that is present, all boards at once "
        "(at most --jobs at a time), each in a pytest of its own, with its own broker, that "
        "deploys FIRMWARE first. While they run, each board has one status line: the test it "
        "runs, its counts so far and the time it took (redrawn in place on a terminal, one line "
        "per change otherwise). A virtual board is always present (an inventory entry with "
        "count: N gives N of them, NAME-1..NAME-N); a USB board when a serial port matches it "
        "now. A board that is not plugged in is "
        "skipped, or fails the gate with --strict. A run that fails for infrastructure reasons "
        "(board unreachable, killed at --timeout, crashed) is run once more into OUT/NAME-retry1, "
        "whose result counts; a firmware failure is never retried. Writes OUT/junit.xml (one "
        "testsuite per board) and OUT/report.html. Exit code: 0 all passed, 1 any firmware "
        "failure, 3 infrastructure failures only (or, with --strict, a missing board), 2 usage."
    )
    common.table_argument(
        parser, "firmware", convert=common.as_directory, metavar="DIR", help="the firmware tree to gate"
    )
    parser.add_argument(
        "--suite",
        type=Path,
        default=gate.DEFAULT_SUITE,
        metavar="PATH",
        help="the test suite to run on each board (default: %(default)s)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=gate.DEFAULT_OUT,
        metavar="DIR",
        help="output folder, emptied first; only a folder rig gate wrote (or an empty one) is "
        "emptied (default: %(default)s)",
    )
    common.table_argument(
        parser,
        "release",
        convert=as_bundle,
        metavar="BUNDLE",
        help="gate exactly this release bundle (its folder or .tar, rig release build): every board "
        "deploys it instead of the firmware tree, each file checked on the board by hash; a board whose "
        "runtime the bundle is not built for is refused (infrastructure, naming both); every result "
        "names the bundle's hash and the runtime it ran on, report.html has a column per runtime",
    )
    parser.add_argument(
        "--flash",
        action="store_true",
        help="before a board's run, flash it to its runtime pin (boards.yaml runtime: image and sha256, "
        "or micropython for a virtual board; written only when its flash holds other bytes, then the "
        "runtime read back); a failure stops that board as infrastructure. Without --flash a board off "
        "its pin is stopped as infrastructure, naming the pin and what it runs",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="a board of the inventory that is not plugged in fails the gate (the release gate)",
    )
    parser.add_argument(
        "--boards",
        type=board_list,
        metavar="A,B",
        help="gate only these inventory boards (default: all of them)",
    )
    common.table_argument(
        parser,
        "broker",
        convert=common.as_choice(settings.BROKERS),
        metavar="|".join(settings.BROKERS),
        help="passed to each pytest as --rig-broker",
    )
    common.table_argument(
        parser,
        "history",
        metavar="URL",
        help="the results store every gate run is written to (docs/history.md)",
    )
    parser.add_argument(
        "--jobs",
        "-j",
        type=jobs,
        metavar="N",
        help="run at most N boards at once (default: every board present at once; 1: one after the other)",
    )
    parser.add_argument(
        "--timeout",
        type=positive_seconds,
        default=gate.DEFAULT_TIMEOUT,
        metavar="S",
        help="bound of one board's run; a run that exceeds it is killed and counts as an "
        "infrastructure failure (default: %(default)gs)",
    )
    parser.add_argument(
        "pytest_args",
        nargs="*",
        metavar="-- PYTEST_ARGS",
        help="anything after -- is passed to each pytest run (e.g. -- -k echo)",
    )


def run(args: argparse.Namespace) -> int:
    firmware: Path = args.firmware
    inventory = common.load(args)
    if not inventory.path.is_file():
        raise ConfigError(
            str(inventory.path), "inventory", "not found: the gate runs the boards an inventory lists"
        )
    planned = gate.plan_boards(inventory, args.boards, common.list_ports)
    config = gate.GateConfig(
        firmware=firmware,
        inventory=inventory.path,
        suite=args.suite,
        out=args.out,
        strict=args.strict,
        broker=args.broker,
        lock_timeout=args.lock_timeout,
        timeout=args.timeout,
        pytest_args=tuple(args.pytest_args),
        title=f"rig gate: {args.release or firmware}",
        jobs=args.jobs,
        release=args.release,
        flash=args.flash,
    )
    config.check()  # before the plan line: a bad option is reported alone
    store = open_history(args.history, inventory.path)  # a bad --history stops the gate now
    if store is not None:  # boards out of rotation are skipped, and said; the valve may stop the gate
        try:
            planned = out_of_rotation(store, planned)
        except BaseException:
            store.close()
            raise
    runs = [p.name for p in planned if p.present]
    missing = [p.name for p in planned if not p.present and not p.out_of_rotation]
    resting = [p.name for p in planned if p.out_of_rotation]
    at_a_time = f" ({args.jobs} at a time)" if args.jobs is not None and args.jobs < len(runs) else ""
    gated = f"release {args.release}" if args.release is not None else str(firmware)
    print(
        f"gate: {gated} on {', '.join(runs) or 'no board'}{at_a_time}"
        + (f"; not present: {', '.join(missing)}" if missing else "")
        + (f"; out of rotation: {', '.join(resting)}" if resting else ""),
        flush=True,
    )
    status = gate.LiveStatus(runs)
    stored: list[str] = []

    def store_run(out: Path) -> Path | None:
        # The run into the store and trends.html beside the report, before the report links it.
        lines, page = store_gate_run(store, out, firmware)
        stored.extend(lines)
        return page

    # A terminal gets the block of status lines redrawn in place; a log, a line per change.
    with (
        contextlib.nullcontext() if store is None else store,
        gate.StatusDisplay(status, sys.stdout, redraw=sys.stdout.isatty()) as display,
    ):
        result = gate.run_gate(config, planned, display.on_event, before_report=store_run)
    for board in result.boards:
        print(verdict_line(board))
        if board.attempts:
            print(ran_on_line(board, result.release))
            print(audit_line(board))
    # The tests of several boards, once per group of boards (rig.gate.several).
    for group in result.groups:
        print(verdict_line(group))
        if group.final is not None and group.final.flash:
            print(f"  flash: {group.final.flash}")
        if group.attempts:
            print(audit_line(group))
    for line in result.several_skipped:
        print(f"several boards: SKIPPED {line}")
    if result.report_problem is not None:
        print(f"rig: warning: report.html not written: {result.report_problem}", file=sys.stderr)
    if result.secrets_leaked is not None:
        print(f"rig: gate files: {result.secrets_leaked}")
    for line in stored:
        print(line, file=sys.stderr if line.startswith("rig: warning:") else sys.stdout)
    print(overall_line(result))
    return EXIT_BY_CATEGORY[result.category]


def out_of_rotation(store: Store, planned: list[gate.PlannedBoard]) -> list[gate.PlannedBoard]:
    """``planned`` with the present boards that board health takes out marked so (skipped,
    with why and since when). Raises ``ValveTripped`` when too many would be."""
    from rig.history.health import rotation

    out = rotation(store, [p.name for p in planned if p.present])
    return [
        dataclasses.replace(p, present=False, out_of_rotation=out[p.name].describe()) if p.name in out else p
        for p in planned
    ]


def verdict_line(board: gate.BoardResult | gate.GroupResult) -> str:
    """``virtual: PASS 10 passed``, ``FAIL firmware: 2 failed (test_a, test_b)``, ...; a group
    of boards as ``boards-vb-1+vb-2: PASS 5 passed``."""
    name = board.name
    final = board.final
    if final is None and isinstance(board, gate.GroupResult):
        return f"{name}: NOT RUN (the gate stopped before it)"
    if final is None:
        assert isinstance(board, gate.BoardResult)
        absence = board.planned.absence
        if board.strict:
            return f"{name}: MISSING ({absence}) — fails the gate (--strict)"
        if board.planned.out_of_rotation:
            return f"{name}: SKIPPED {absence}"
        return f"{name}: SKIPPED not present ({absence})"
    after = ""
    if board.retried:
        after = f" (retried once after: {board.attempts[0].infrastructure_reason})"
    category = final.category
    if category == gate.PASS:
        return f"{name}: PASS {gate.counts_text(final.counts)}{after}"
    if category == gate.FIRMWARE:
        failed = final.firmware_failures
        named = ", ".join(f.name for f in failed[:NAMED_FAILURES])
        more = f", and {len(failed) - NAMED_FAILURES} more" if len(failed) > NAMED_FAILURES else ""
        also = f"; also infrastructure: {final.infrastructure_reason}" if final.infrastructure_reason else ""
        return f"{name}: FAIL firmware: {len(failed)} failed ({named}{more}){also}{after}"
    if category == gate.CONFIG:
        return f"{name}: FAIL config: {final.config_problem} (see {gate.show_path(final.log)})"
    retried = "retried once; " if board.retried else ""
    log = gate.show_path(final.log)
    return f"{name}: FAIL infrastructure: {final.infrastructure_reason} ({retried}see {log})"


def ran_on_line(board: gate.BoardResult, release: str) -> str:
    """``  ran on: micropython 1.29.0-preview (...) port linux variant standard; bundle 3f2a...;
    flash: ...``: the coordinates of the board's result in the runtime matrix."""
    final = board.final
    assert final is not None
    parts = [f"runtime {final.runtime or '(not read)'}"]
    if release:
        parts.append(f"bundle {final.release or release}")
    if final.flash:
        parts.append(f"flash: {final.flash}")
    return "  ran on: " + "; ".join(parts)


def audit_line(board: gate.BoardResult | gate.GroupResult) -> str:
    """``  secrets audit: virtual clean (4 secret(s) searched for); virtual-retry1 ...``: the
    verdict of every run folder the gate keeps for ``board``, the first attempt's too."""
    verdicts = [
        f"{folder.name} {audit.summary if audit is not None else 'not audited'}"
        for folder, audit in board.audits
    ]
    return "  secrets audit: " + "; ".join(verdicts)


def overall_line(result: gate.GateResult) -> str:
    report = gate.show_path(result.report) if result.report is not None else "(not written)"
    where = f"report {report}, junit {gate.show_path(result.junit)}"
    if result.category == gate.PASS:
        return f"GATE: PASS — {where}"
    kinds = ", ".join(result.failures)
    nothing = "; no board was tested" if not result.tested else ""
    return f"GATE: FAIL ({kinds}){nothing} — {where}"
