"""The HIL suite in every combination the README offers: broker (mosquitto, amqtt) x firmware
loop (reference, responsive) x TLS (off, on), two runs at a time.

Why two at a time: each run spends its time waiting on a board and a broker of its own (a run
of the suite uses about a quarter of a core), so two share these 2 cores without slowing each
other, and the matrix takes half as long. Each run is a pytest of its own with its own
artifacts folder, broker and virtual board (``rig gate --jobs`` runs boards side by side the
same way). A run's output goes to ``ARTIFACTS/hil-NAME.log``; the summary line of each run is
printed as it ends, and the tail of the log of each run that failed at the end.

Every run is bounded (``--bound``, 15 minutes): one that outlives it is stopped, its process
group killed by PID, and counted as failed. Ctrl-C stops every run the same way.

Usage: ``python tests/hil_matrix.py [--jobs N] [--bound S] [-- PYTEST ARGS]``; exit 0 when every
run passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import itertools
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ARTIFACTS = Path("artifacts")
TAIL_LINES = 60


@dataclass(frozen=True)
class Combination:
    broker: str
    mode: str
    tls: bool

    @property
    def name(self) -> str:
        return f"{self.broker}-{self.mode}" + ("-tls" if self.tls else "")

    def command(self, extra: list[str]) -> list[str]:
        return [
            sys.executable,
            "-m",
            "pytest",
            "tests/hil",
            f"--rig-broker={self.broker}",
            f"--rig-firmware-mode={self.mode}",
            *(["--rig-tls"] if self.tls else []),
            f"--rig-artifacts={ARTIFACTS / ('hil-' + self.name)}",
            *extra,
        ]


COMBINATIONS = [
    Combination(broker, mode, tls)
    for broker, mode, tls in itertools.product(
        ("mosquitto", "amqtt"), ("reference", "responsive"), (False, True)
    )
]


@dataclass
class Run:
    combination: Combination
    process: subprocess.Popen[bytes]
    log: Path
    started: float

    def stop(self) -> None:
        """Its whole process group, by PID: the pytest, its board and its broker."""
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        except ProcessLookupError:
            pass


def start(combination: Combination, extra: list[str]) -> Run:
    ARTIFACTS.mkdir(exist_ok=True)
    log = ARTIFACTS / f"hil-{combination.name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            combination.command(extra), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Run(combination, process, log, time.monotonic())


def summary(log: Path) -> str:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1].strip("= ") if lines else "(no output)"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (default: 2)")
    parser.add_argument("--bound", type=float, default=900.0, help="bound (s) of each run (default: 900)")
    parser.add_argument("pytest_args", nargs="*", help="passed to each pytest (after --)")
    args = parser.parse_args(argv)
    waiting = list(COMBINATIONS)
    running: list[Run] = []
    failed: list[Run] = []
    done = 0
    try:
        while waiting or running:
            while waiting and len(running) < args.jobs:
                running.append(start(waiting.pop(0), args.pytest_args))
            time.sleep(0.5)  # nothing to block on across several children; a bounded poll
            for run in list(running):
                overdue = time.monotonic() - run.started > args.bound
                if run.process.poll() is None and not overdue:
                    continue
                if overdue and run.process.poll() is None:
                    run.stop()
                    note = f"stopped after its bound of {args.bound:.0f}s"
                else:
                    note = summary(run.log)
                running.remove(run)
                done += 1
                ok = run.process.returncode == 0 and not overdue
                if not ok:
                    failed.append(run)
                took = time.monotonic() - run.started
                verdict = "PASS" if ok else "FAIL"
                print(
                    f"[{done}/{len(COMBINATIONS)}] {run.combination.name}: {verdict} in {took:.0f}s: "
                    f"{note} (log: {run.log})",
                    flush=True,
                )
    except KeyboardInterrupt:
        for run in running:
            run.stop()
        raise
    for run in failed:
        tail = run.log.read_text(errors="replace").splitlines()[-TAIL_LINES:]
        print(f"\n---- {run.combination.name}: the last {len(tail)} lines of {run.log}")
        print("\n".join(tail))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
