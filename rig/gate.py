"""The gate: the whole HIL suite on every board of the bench that is present, one verdict each.

``plan_boards`` decides which boards run (present now) and which are missing. ``run_gate`` runs
the suite on each present board in a pytest subprocess of its own (the plugin deploys the
firmware), one board after the other, classifies the run from its ``run.json``, retries an
infrastructure failure once, merges the boards' JUnit files and writes the HTML report.

Nothing here prints: progress goes to a callback and the verdicts come back as data, so that
the ``rig gate`` command decides how they read and which exit code they give.

Layout of the output folder::

    .rig-gate              marks the folder as the gate's own, so that it may be emptied
    NAME/                  the board's run folder (--rig-artifacts): run.json, junit.xml, pytest.log
    NAME-retry1/           the retry after an infrastructure failure; the first attempt stays
    junit.xml              every board's JUnit, one <testsuite name="NAME"> per board
    report.html            the HTML report over the final run folder of every board
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from serial.tools.list_ports_common import ListPortInfo

from rig.bench import list_ports
from rig.discovery import BoardNotPresent, find_port
from rig.errors import ConfigError, InfrastructureError
from rig.evidence.run_record import RunRecord
from rig.inventory import BoardSpec, Inventory

Category = Literal["pass", "firmware", "infrastructure", "config", "skipped"]
PASS: Category = "pass"
FIRMWARE: Category = "firmware"
INFRASTRUCTURE: Category = "infrastructure"
CONFIG: Category = "config"
SKIPPED: Category = "skipped"
# Which failure speaks for the gate when boards fail differently: a firmware failure is the
# news a release gate exists for; a misconfigured run says nothing about the boards.
SEVERITY: tuple[Category, ...] = (FIRMWARE, CONFIG, INFRASTRUCTURE)

DEFAULT_SUITE = Path("tests") / "hil"
DEFAULT_OUT = Path("artifacts") / "gate"
DEFAULT_TIMEOUT = 1800.0
RETRIES = 1
MARKER = ".rig-gate"
# After the timeout pytest gets SIGINT first, so that it tears the board and broker down and
# writes its JUnit XML and run.json (evidence of what hung); only then is the group killed.
INTERRUPT_GRACE = 15.0
TERM_GRACE = 5.0
POLL_INTERVAL = 0.1
# Lines of pytest's output that go into the JUnit of a run that failed as a whole.
LOG_TAIL_LINES = 60

# pytest's own exit codes (pytest.ExitCode), by meaning.
_PYTEST_INTERRUPTED = 2
_PYTEST_INTERNAL_ERROR = 3
_PYTEST_USAGE_ERROR = 4
_PYTEST_NO_TESTS = 5

PortLister = Callable[[], Sequence[ListPortInfo]]


# -- plan ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedBoard:
    """A board the gate covers. A missing one keeps what was searched and the ports seen,
    for the verdict line and its JUnit testcase."""

    spec: BoardSpec
    present: bool
    searched: str = ""
    seen: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def absence(self) -> str:
        """Why the board is missing, e.g. ``vid:pid 10c4:ea60, serial_number 0001 not plugged in``."""
        return f"{self.searched} not plugged in"


def plan_boards(
    inventory: Inventory, names: Sequence[str] | None = None, lister: PortLister = list_ports
) -> list[PlannedBoard]:
    """The inventory's boards (or those of ``names``, in that order) and whether each is present
    now: a virtual board always is, a USB board when ``find_port`` finds it among ``lister()``.

    Raises ``ConfigError`` for an unknown name, an empty plan, an entry matching several ports
    (``BoardAmbiguous``) and a present board whose ``${VAR}`` secrets are unset: each would fail
    every run on that board without saying anything about the firmware.
    """
    if names is None:
        specs = list(inventory.boards)
    else:
        specs = [inventory.get(name) for name in dict.fromkeys(names)]
    if not specs:
        raise ConfigError(str(inventory.path), "boards", "no boards to gate: the inventory lists none")
    usb = [spec for spec in specs if spec.kind != "virtual"]
    ports = list(lister()) if usb else []
    planned = []
    for spec in specs:
        if spec.kind != "virtual":
            try:
                find_port(spec, ports)
            except BoardNotPresent as e:
                planned.append(PlannedBoard(spec, present=False, searched=e.searched, seen=e.seen))
                continue
        planned.append(PlannedBoard(inventory.select(spec.name), present=True))
    return planned


# -- configuration ------------------------------------------------------------------------------


@dataclass(frozen=True)
class GateConfig:
    """What to gate and how. Paths are made absolute before they reach pytest, whose plugin
    resolves relative ones against its rootdir, not against the caller's directory."""

    firmware: Path
    inventory: Path
    suite: Path = DEFAULT_SUITE
    out: Path = DEFAULT_OUT
    strict: bool = False
    broker: str | None = None
    lock_timeout: float | None = None
    timeout: float = DEFAULT_TIMEOUT
    pytest_args: tuple[str, ...] = ()
    title: str = ""

    def check(self) -> None:
        if not self.firmware.is_dir():
            raise ConfigError("--firmware", "firmware", f"{self.firmware} is not a directory")
        if not self.suite.exists():
            raise ConfigError("--suite", "suite", f"{self.suite} does not exist")
        if not self.inventory.is_file():
            raise ConfigError("--inventory", "inventory", f"{self.inventory} is not a file")
        if not self.timeout > 0:
            raise ConfigError("--timeout", "timeout", f"must be more than 0, got {self.timeout}")


# -- results ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FailedTest:
    nodeid: str
    name: str
    message: str  # the first meaningful line of the failure

    @property
    def reason(self) -> str:
        return self.message or self.name


@dataclass
class Attempt:
    """One pytest run of the suite on one board, classified.

    ``run_problems`` are infrastructure failures of the run as a whole (killed, crashed, no
    run.json); ``config_problem`` is a run pytest refused to start (usage error, no tests).
    """

    board: str
    folder: Path
    retry: int
    returncode: int
    duration: float
    timed_out: bool = False
    source: Literal["run.json", "junit.xml", "exit code"] = "exit code"
    counts: dict[str, int] = field(default_factory=dict)
    firmware_failures: list[FailedTest] = field(default_factory=list)
    infrastructure_failures: list[FailedTest] = field(default_factory=list)
    run_problems: list[str] = field(default_factory=list)
    config_problem: str | None = None

    @property
    def category(self) -> Category:
        if self.firmware_failures:
            return FIRMWARE
        if self.config_problem is not None:
            return CONFIG
        if self.run_problems or self.infrastructure_failures:
            return INFRASTRUCTURE
        return PASS

    @property
    def infrastructure_reason(self) -> str:
        """The first infrastructure failure, in a few words; empty when there is none."""
        if self.run_problems:
            return self.run_problems[0]
        return self.infrastructure_failures[0].reason if self.infrastructure_failures else ""

    @property
    def log(self) -> Path:
        return self.folder / "pytest.log"


@dataclass
class BoardResult:
    planned: PlannedBoard
    strict: bool
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.planned.name

    @property
    def final(self) -> Attempt | None:
        """The attempt that counts: the retry when there was one."""
        return self.attempts[-1] if self.attempts else None

    @property
    def retried(self) -> bool:
        return len(self.attempts) > 1

    @property
    def category(self) -> Category:
        if self.final is not None:
            return self.final.category
        # A board that is not plugged in fails the release gate (--strict) as the bench's fault.
        return INFRASTRUCTURE if self.strict else SKIPPED


@dataclass
class GateResult:
    boards: list[BoardResult]
    junit: Path
    report: Path | None
    report_problem: str | None = None

    @property
    def tested(self) -> bool:
        return any(board.attempts for board in self.boards)

    @property
    def failures(self) -> list[Category]:
        """The kinds of failure the gate saw, most severe first."""
        seen = {board.category for board in self.boards}
        if not self.tested:
            seen.add(INFRASTRUCTURE)  # nothing was tested, so nothing passed
        return [category for category in SEVERITY if category in seen]

    @property
    def category(self) -> Category:
        failures = self.failures
        return failures[0] if failures else PASS


@dataclass(frozen=True)
class BoardStarted:
    board: str
    folder: Path
    retry: int
    position: int  # 1-based among the boards that run
    total: int


@dataclass(frozen=True)
class BoardFinished:
    attempt: Attempt
    will_retry: bool
    position: int
    total: int


GateEvent = BoardStarted | BoardFinished
Progress = Callable[[GateEvent], None]


# -- running ------------------------------------------------------------------------------------


def run_gate(
    config: GateConfig, planned: Sequence[PlannedBoard], progress: Progress | None = None
) -> GateResult:
    """Empty ``config.out``, run the suite on each present board (retrying an infrastructure
    failure once), then write ``junit.xml`` and ``report.html`` there."""
    config = _absolute(config)
    config.check()
    prepare_out(config.out)
    notify: Progress = progress or (lambda event: None)
    present = [p for p in planned if p.present]
    results = []
    for board in planned:
        result = BoardResult(board, config.strict)
        results.append(result)
        if not board.present:
            continue
        position = present.index(board) + 1
        for retry in range(RETRIES + 1):
            folder = config.out / (board.name if retry == 0 else f"{board.name}-retry{retry}")
            notify(BoardStarted(board.name, folder, retry, position, len(present)))
            attempt = run_board(config, board.spec, folder, retry)
            result.attempts.append(attempt)
            # A firmware failure is never retried, not even when the run also had an
            # infrastructure failure: rerunning cannot change the firmware's verdict.
            will_retry = attempt.category == INFRASTRUCTURE and retry < RETRIES
            notify(BoardFinished(attempt, will_retry, position, len(present)))
            if not will_retry:
                break
    junit = config.out / "junit.xml"
    write_junit(junit, results, config.out)
    runs = [r.final.folder for r in results if r.final is not None]
    report, problem = _write_report(runs, config.out / "report.html", config.title or "rig gate")
    return GateResult(results, junit, report, problem)


def _absolute(config: GateConfig) -> GateConfig:
    return GateConfig(
        firmware=config.firmware.resolve(),
        inventory=config.inventory.resolve(),
        suite=config.suite.resolve(),
        out=config.out.resolve(),
        strict=config.strict,
        broker=config.broker,
        lock_timeout=config.lock_timeout,
        timeout=config.timeout,
        pytest_args=config.pytest_args,
        title=config.title,
    )


def prepare_out(out: Path) -> None:
    """Empty ``out`` for this gate run. Only a folder the gate wrote before (it holds the
    marker) or an empty one is emptied: ``--out .`` must never wipe a checkout."""
    if out.exists():
        if not out.is_dir():
            raise ConfigError("--out", "out", f"{out} exists and is not a directory")
        if any(out.iterdir()) and not (out / MARKER).exists():
            raise ConfigError(
                "--out",
                "out",
                f"{out} is not empty and was not written by rig gate; not emptying it "
                "(remove it or choose another folder)",
            )
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / MARKER).write_text("written by rig gate, which empties this folder at every run\n")


def pytest_command(config: GateConfig, board: str, folder: Path) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "pytest",
        str(config.suite),
        f"--rig-board={board}",
        f"--rig-firmware={config.firmware}",
        f"--rig-artifacts={folder}",
        f"--rig-inventory={config.inventory}",
        f"--junitxml={folder / 'junit.xml'}",
        "-p",
        "no:cacheprovider",
        "-q",
    ]
    if config.broker is not None:
        command.append(f"--rig-broker={config.broker}")
    if config.lock_timeout is not None:
        command.append(f"--rig-lock-timeout={config.lock_timeout:g}")
    return command + list(config.pytest_args)


def run_board(config: GateConfig, spec: BoardSpec, folder: Path, retry: int = 0) -> Attempt:
    """One run of the suite on ``spec`` into ``folder``, bounded by ``config.timeout``."""
    folder.mkdir(parents=True, exist_ok=True)
    command = pytest_command(config, spec.name, folder)
    (folder / "command.json").write_text(json.dumps(command, indent=1))
    started = time.monotonic()
    returncode, timed_out = run_bounded(command, folder / "pytest.log", config.timeout, _subprocess_env())
    attempt = Attempt(spec.name, folder, retry, returncode, time.monotonic() - started, timed_out)
    classify(attempt, config.timeout)
    return attempt


def _subprocess_env() -> dict[str, str]:
    # The suite's conftest imports rig.plugin: make it this very copy of the rig, installed or not.
    root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def run_bounded(command: Sequence[str], log: Path, timeout: float, env: dict[str, str]) -> tuple[int, bool]:
    """Run ``command`` in a process group of its own, output to ``log``; its exit code and
    whether it was killed for exceeding ``timeout``. Whatever ends this call, nothing of the
    group is left running."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            # Its own group, so that the board processes it starts can be killed with it, and
            # its own session, so that a Ctrl-C at the terminal reaches the gate only.
            start_new_session=True,
        )
    timed_out = False
    try:
        if not _wait_exited(process.pid, timeout):
            timed_out = True
            _stop_group(process.pid)
    except BaseException:
        _kill_group(process.pid)
        process.wait()
        raise
    # The leader has exited but is not reaped yet, so its pid (the group's id) cannot have been
    # reused: anything still in the group is a leftover of this run.
    _kill_group(process.pid)
    return process.wait(), timed_out


def _wait_exited(pid: int, timeout: float) -> bool:
    """Wait until ``pid`` exits, without reaping it; False if it still runs after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is not None:
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        time.sleep(min(POLL_INTERVAL, remaining))


def _stop_group(pid: int) -> None:
    """SIGINT to pytest (it tears down and writes its reports), then SIGTERM and SIGKILL to
    the whole group, each after a grace period."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGINT)
    if _wait_exited(pid, INTERRUPT_GRACE):
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    if _wait_exited(pid, TERM_GRACE):
        return
    _kill_group(pid)


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


# -- classification -----------------------------------------------------------------------------


def classify(attempt: Attempt, timeout: float) -> None:
    """Fill ``attempt``'s counts and failures from its run.json, else its JUnit XML, else
    pytest's exit code. A run that left no run.json is an infrastructure failure whatever else
    it shows: the rig plugin did not get to record it."""
    code = attempt.returncode
    if attempt.timed_out:
        attempt.run_problems.append(f"timed out after {timeout:g}s, killed")
    elif code < 0:
        attempt.run_problems.append(f"pytest died of {_signal_name(-code)}")
    record = _load_run_record(attempt.folder / "run.json")
    suites = load_junit(attempt.folder / "junit.xml")
    if record is not None:
        attempt.source = "run.json"
        tests = [(t.nodeid, t.name, t.outcome, t.infrastructure, t.message) for t in record.tests]
        if record.finished is None and not attempt.run_problems:
            attempt.run_problems.append("the run did not finish (run.json has no end time)")
    elif suites is not None:
        attempt.source = "junit.xml"
        tests = list(_junit_tests(suites))
        attempt.run_problems.append("no run.json: the rig plugin did not record the run")
    else:
        attempt.source = "exit code"
        tests = []
        if not attempt.run_problems:
            attempt.run_problems.append(f"pytest exited with code {code} and left no run.json nor junit.xml")
    attempt.counts = dict(Counter(outcome for _, _, outcome, _, _ in tests))
    for nodeid, name, outcome, infrastructure, message in tests:
        if outcome in ("failed", "error"):
            failures = attempt.infrastructure_failures if infrastructure else attempt.firmware_failures
            failures.append(FailedTest(nodeid, name, first_line(message)))
    if attempt.timed_out or code < 0:
        return
    if code in (_PYTEST_USAGE_ERROR, _PYTEST_NO_TESTS):
        attempt.config_problem = (
            "pytest usage error (exit 4)" if code == _PYTEST_USAGE_ERROR else "no tests collected (exit 5)"
        )
    elif code == _PYTEST_INTERRUPTED:
        attempt.run_problems.append("pytest was interrupted (exit 2: a collection error or an abort)")
    elif code == _PYTEST_INTERNAL_ERROR:
        attempt.run_problems.append("pytest hit an internal error (exit 3)")
    elif code == 1 and not (attempt.firmware_failures or attempt.infrastructure_failures):
        attempt.run_problems.append("pytest failed (exit 1) but recorded no failed test")
    elif code not in (0, 1):
        attempt.run_problems.append(f"pytest exited with code {code}")
    elif attempt.category == PASS and not attempt.counts.get("passed"):
        # Every test skipped (the plugin skips them all when the board cannot be had): that
        # says nothing about the firmware, and a gate must not pass on it.
        skips = [first_line(m) for _, _, outcome, _, m in tests if outcome == "skipped"]
        why = f": {skips[0]}" if skips and skips[0] else ""
        attempt.run_problems.append(f"no test ran ({len(skips)} skipped{why})")


def _load_run_record(path: Path) -> RunRecord | None:
    try:
        return RunRecord.load(path)
    except FileNotFoundError:
        return None
    except (ValueError, TypeError, KeyError):
        # Saved atomically, so a bad file is not a torn write but a plugin of another format:
        # the JUnit XML still tells what happened.
        return None


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


_E_LINE = re.compile(r"^E\s+")
# pytest's JUnit message of a setup or teardown error wraps the exception in this.
_PHASE_PREFIX = re.compile(r'^failed on \w+ with "(.*)"$')
# ``rig.errors.BoardUnreachable: `` or ``AssertionError: ``: a class name, module-qualified or not.
_EXCEPTION_PREFIX = re.compile(r"^(?:[a-z_]\w*\.)*[A-Z]\w*: ")


def first_line(message: str) -> str:
    """The first meaningful line of a failure message, without pytest's ``E`` margin and the
    exception's class name: ``board unreachable: port vanished``."""
    for line in message.splitlines():
        line = _E_LINE.sub("", line).strip()
        if line:
            return _EXCEPTION_PREFIX.sub("", _PHASE_PREFIX.sub(r"\1", line))
    return ""


# -- JUnit --------------------------------------------------------------------------------------


def load_junit(path: Path) -> list[ET.Element] | None:
    """The ``<testsuite>`` elements of a JUnit file; None when it is missing or torn (a killed
    run may leave half a file)."""
    try:
        root = ET.parse(path).getroot()
    except (FileNotFoundError, ET.ParseError):
        return None
    return [root] if root.tag == "testsuite" else list(root.iter("testsuite"))


def _infrastructure_names() -> set[str]:
    """Every InfrastructureError class, by qualified and plain name: a JUnit failure message
    starts with the exception's class, the only trace of the run.json flag there."""
    names: set[str] = set()
    pending: list[type[BaseException]] = [InfrastructureError]
    while pending:
        cls = pending.pop()
        names.update({cls.__name__, f"{cls.__module__}.{cls.__qualname__}"})
        pending.extend(cls.__subclasses__())
    return names


def _junit_tests(suites: Iterable[ET.Element]) -> Iterable[tuple[str, str, str, bool, str]]:
    infrastructure_names = _infrastructure_names()
    for suite in suites:
        for case in suite.iter("testcase"):
            name = case.get("name", "")
            nodeid = f"{case.get('classname', '')}::{name}"
            outcome, message = "passed", ""
            for tag, meaning in (("skipped", "skipped"), ("failure", "failed"), ("error", "error")):
                found = case.find(tag)
                if found is not None:
                    outcome, message = meaning, found.get("message", "") or (found.text or "")
            props = {p.get("name"): p.get("value") for p in case.iter("property")}
            match = re.search(r"([A-Za-z_][\w.]*): ", message)
            infrastructure = props.get("infrastructure") in ("true", "True", "1") or (
                match is not None and match.group(1) in infrastructure_names
            )
            yield nodeid, name, outcome, infrastructure, message


def write_junit(path: Path, results: Sequence[BoardResult], out: Path) -> None:
    """One ``<testsuite name="NAME">`` per board inside ``<testsuites>``: the final attempt's
    testcases as pytest wrote them (properties and system-out kept), plus a ``board-present``
    testcase for a missing board and a ``board-run`` error for a run that failed as a whole, so
    that CI shows a failure wherever the gate saw one."""
    root = ET.Element("testsuites", name="rig gate")
    for result in results:
        root.append(_board_suite(result, out))
    for key in ("tests", "failures", "errors", "skipped"):
        root.set(key, str(sum(int(s.get(key, "0")) for s in root)))
    root.set("time", f"{sum(float(s.get('time', '0')) for s in root):.3f}")
    ET.indent(root)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def _board_suite(result: BoardResult, out: Path) -> ET.Element:
    suite = ET.Element("testsuite", name=result.name)
    props = ET.SubElement(suite, "properties")
    _property(props, "board", result.name)
    _property(props, "board_kind", result.planned.spec.kind)
    final = result.final
    if final is None:
        kind = "failure" if result.strict else "skipped"
        message = f"board {result.name} not present: no serial port matches {result.planned.searched}"
        seen = "\n".join(result.planned.seen) or "no serial ports at all"
        case = ET.SubElement(suite, "testcase", classname="rig.gate", name="board-present", time="0")
        ET.SubElement(case, kind, message=message).text = f"{message}\nserial ports seen:\n{seen}"
    else:
        _property(props, "attempts", str(len(result.attempts)))
        _property(props, "run_folder", os.path.relpath(final.folder, out))
        if result.retried:
            _property(props, "retried_after", result.attempts[0].infrastructure_reason)
        seconds = 0.0
        for original in load_junit(final.folder / "junit.xml") or []:
            seconds += float(original.get("time", "0") or 0)
            for key in ("timestamp", "hostname"):
                if original.get(key) and not suite.get(key):
                    suite.set(key, original.get(key, ""))
            for child in original:
                if child.tag == "properties":
                    props.extend(list(child))
                else:
                    suite.append(child)
        suite.set("time", f"{seconds:.3f}")
        problem = final.config_problem or (final.run_problems[0] if final.run_problems else None)
        if problem is not None:
            case = ET.SubElement(suite, "testcase", classname="rig.gate", name="board-run", time="0")
            ET.SubElement(case, "error", message=problem).text = problem
            ET.SubElement(case, "system-out").text = _log_tail(final.log)
    cases = suite.findall("testcase")
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(sum(c.find("failure") is not None for c in cases)))
    suite.set("errors", str(sum(c.find("error") is not None for c in cases)))
    suite.set("skipped", str(sum(c.find("skipped") is not None for c in cases)))
    return suite


def _property(props: ET.Element, name: str, value: str) -> None:
    ET.SubElement(props, "property", name=name, value=value)


def _log_tail(log: Path) -> str:
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return ""
    return "\n".join(lines[-LOG_TAIL_LINES:])


# -- report -------------------------------------------------------------------------------------


def _write_report(runs: Sequence[Path], out: Path, title: str) -> tuple[Path | None, str | None]:
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


__all__ = [
    "CONFIG",
    "DEFAULT_OUT",
    "DEFAULT_SUITE",
    "DEFAULT_TIMEOUT",
    "FIRMWARE",
    "INFRASTRUCTURE",
    "PASS",
    "SKIPPED",
    "Attempt",
    "BoardFinished",
    "BoardResult",
    "BoardStarted",
    "Category",
    "FailedTest",
    "GateConfig",
    "GateEvent",
    "GateResult",
    "PlannedBoard",
    "classify",
    "first_line",
    "load_junit",
    "plan_boards",
    "prepare_out",
    "pytest_command",
    "run_board",
    "run_bounded",
    "run_gate",
    "write_junit",
]
