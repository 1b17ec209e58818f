"""What the gate found, as data: categories, attempts, per-board and overall results, and the
progress events of a run. Nothing here runs anything or reads a file."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from rig.evidence.run_audit import FolderVerdict
from rig.gate.groups import BoardsGroup
from rig.gate.plan import PlannedBoard

Category = Literal["pass", "firmware", "infrastructure", "config", "skipped"]
PASS: Category = "pass"
FIRMWARE: Category = "firmware"
INFRASTRUCTURE: Category = "infrastructure"
CONFIG: Category = "config"
SKIPPED: Category = "skipped"
# Which failure speaks for the gate when boards fail differently: a firmware failure is the
# news a release gate exists for; a misconfigured run says nothing about the boards.
SEVERITY: tuple[Category, ...] = (FIRMWARE, CONFIG, INFRASTRUCTURE)


@dataclass(frozen=True)
class CaseOutcome:
    """One test as a run left it (from run.json or the JUnit XML), before classification."""

    nodeid: str
    name: str
    outcome: str  # passed, failed, error, skipped
    infrastructure: bool  # the failure was an InfrastructureError, by type
    message: str


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
    # The folder's secrets audit as its secrets-audit.json says (the gate audits every folder it
    # keeps, killed runs too; a missing verdict is "not audited"); None only for an attempt
    # that was never classified.
    audit: FolderVerdict | None = None
    # The MicroPython runtime the board ran, as it said itself (``runtime_key``: version, build,
    # port, variant); "" when the run never read it.
    runtime: str = ""
    # The release bundle's hash the run's tests name (``rig gate --release``); "" for a tree.
    release: str = ""
    # What ``--flash`` did to the board before the run (``FlashOutcome.summary``); "" without it.
    flash: str = ""

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


class _Attempts:
    """What a board's and a group's results share: their attempts, the last of which counts."""

    attempts: list[Attempt]

    @property
    def final(self) -> Attempt | None:
        """The attempt that counts: the retry when there was one."""
        return self.attempts[-1] if self.attempts else None

    @property
    def retried(self) -> bool:
        return len(self.attempts) > 1

    @property
    def audits(self) -> list[tuple[Path, FolderVerdict | None]]:
        """Every run folder the gate keeps (the first attempt's stays next to its retry) and its
        secrets audit."""
        return [(attempt.folder, attempt.audit) for attempt in self.attempts]

    def _attempts_category(self) -> Category | None:
        if any(audit is not None and not audit.clean for _, audit in self.audits):
            # A kept folder that holds a secret, or that nobody could vouch for, fails the
            # result whatever the retry did: it is uploaded with the rest.
            return FIRMWARE
        return self.final.category if self.final is not None else None


@dataclass
class BoardResult(_Attempts):
    planned: PlannedBoard
    strict: bool
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.planned.name

    @property
    def category(self) -> Category:
        found = self._attempts_category()
        if found is not None:
            return found
        # A board that is not plugged in fails the release gate (--strict) as the bench's fault.
        return INFRASTRUCTURE if self.strict else SKIPPED


@dataclass
class GroupResult(_Attempts):
    """The tests of several boards on one group of boards (``rig.gate.several``)."""

    group: BoardsGroup
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.group.name

    @property
    def category(self) -> Category:
        found = self._attempts_category()
        return found if found is not None else SKIPPED  # not run: the gate was stopped first


@dataclass
class GateResult:
    boards: list[BoardResult]
    junit: Path
    report: Path | None
    report_problem: str | None = None
    # The secrets audit of what the gate wrote itself (junit.xml, report.html); None: clean.
    secrets_leaked: str | None = None
    # The hash of the release bundle every board deployed (``--release``); "" for a tree.
    release: str = ""
    # The tests of several boards, once per group of boards (``rig.gate.several``).
    groups: list[GroupResult] = field(default_factory=list)
    # Why some tests of several boards did not run: "needed boards a=any, b=any (2 boards) ...".
    several_skipped: list[str] = field(default_factory=list)

    @property
    def tested(self) -> bool:
        return any(board.attempts for board in self.boards)

    @property
    def failures(self) -> list[Category]:
        """The kinds of failure the gate saw, most severe first."""
        seen = {board.category for board in self.boards} | {group.category for group in self.groups}
        if self.secrets_leaked is not None:
            seen.add(FIRMWARE)  # never retried, always fails the gate, as a firmware failure
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
