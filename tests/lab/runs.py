"""Runs of the rig on the lab, as a user starts them: pytest in a process of its own."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from rig.processes import ChildProcess

REPO = Path(__file__).resolve().parents[2]
# The whole HIL suite takes about a minute on a virtual board; over RFC2217 a little more.
SUITE_BOUND = 600.0


@dataclass
class Run:
    code: int
    log: Path
    junit: Path
    artifacts: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def tail(self, n: int = 60) -> str:
        return "\n".join(self.output().splitlines()[-n:])

    def skipped(self) -> dict[str, str]:
        """Test name -> skip message, from the JUnit file."""
        root = ET.parse(self.junit).getroot()
        return {
            case.get("name", ""): skip.get("message", "")
            for case in root.iter("testcase")
            for skip in case.findall("skipped")
        }

    def counts(self) -> dict[str, int]:
        root = ET.parse(self.junit).getroot()
        suite = root if root.tag == "testsuite" else root.find("testsuite")
        assert suite is not None
        return {k: int(suite.get(k, "0")) for k in ("tests", "failures", "errors", "skipped")}


def start_run(
    board: str, inventory: Path, workdir: Path, env: Mapping[str, str], *tests: str
) -> tuple[ChildProcess, Run]:
    workdir.mkdir(parents=True, exist_ok=True)
    run = Run(-1, workdir / "pytest.log", workdir / "junit.xml", workdir / "artifacts")
    argv = [
        sys.executable,
        "-m",
        "pytest",
        *(tests or ("tests/hil",)),
        "-p",
        "no:cacheprovider",
        f"--rig-inventory={inventory}",
        f"--rig-board={board}",
        f"--rig-artifacts={run.artifacts}",
        f"--junitxml={run.junit}",
        "-q",
    ]
    process = ChildProcess.spawn(argv, name=f"pytest on {board}", log_path=run.log, cwd=REPO, env=env)
    return process, run


def finish(process: ChildProcess, run: Run, bound: float = SUITE_BOUND) -> Run:
    if not process.wait_exited(bound):
        process.stop()
        raise AssertionError(f"the run did not end within {bound:g}s; its log: {run.log}\n{run.tail()}")
    run.code = process.stop()
    return run


def run_on(board: str, inventory: Path, workdir: Path, env: Mapping[str, str], *tests: str) -> Run:
    process, run = start_run(board, inventory, workdir, env, *tests)
    return finish(process, run)
