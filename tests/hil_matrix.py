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

Usage: ``python tests/hil_matrix.py [--jobs N] [--bound S] [--only NAMES] [--repeat N]
[-- PYTEST ARGS]``; exit 0 when every run passed, 1 otherwise. ``--only mosquitto-reference,amqtt-responsive
--repeat 20`` is the stability proof the issues ask for (20 consecutive runs on each broker): each
repetition is a run of its own, with its own artifacts folder and log (``hil-NAME-rK``), and the
end says how many of each passed and their wall times (median and slowest).
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
# pytest's exit codes of a run whose tests did not run: interrupted (a collection error),
# internal error, usage error.
NO_TESTS_RAN = (2, 3, 4)
TAIL_LINES = 60


@dataclass(frozen=True)
class Combination:
    broker: str
    mode: str
    tls: bool

    @property
    def name(self) -> str:
        return f"{self.broker}-{self.mode}" + ("-tls" if self.tls else "")

    def command(self, extra: list[str], label: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "pytest",
            "tests/hil",
            f"--rig-broker={self.broker}",
            f"--rig-firmware-mode={self.mode}",
            *(["--rig-tls"] if self.tls else []),
            f"--rig-artifacts={ARTIFACTS / ('hil-' + label)}",
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
    label: str
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


def start(combination: Combination, label: str, extra: list[str]) -> Run:
    ARTIFACTS.mkdir(exist_ok=True)
    log = ARTIFACTS / f"hil-{label}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            combination.command(extra, label),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Run(combination, label, process, log, time.monotonic())


def chosen(only: str | None) -> list[Combination]:
    """The combinations named by --only (all when None); an unknown name is refused, naming it."""
    if only is None:
        return list(COMBINATIONS)
    by_name = {combination.name: combination for combination in COMBINATIONS}
    names = [name.strip() for name in only.split(",") if name.strip()]
    unknown = [name for name in names if name not in by_name]
    if unknown:
        raise SystemExit(
            f"hil_matrix: --only names {', '.join(unknown)}, not a combination (one of: {', '.join(by_name)})"
        )
    return [by_name[name] for name in names]


def tally(results: list[tuple[Run, bool, float]]) -> list[str]:
    """Per combination: runs passed of runs, the longest streak of passes, wall times."""
    lines = []
    for combination in dict.fromkeys(run.combination for run, _, _ in results):
        mine = [(ok, took) for run, ok, took in results if run.combination == combination]
        times = sorted(took for _, took in mine)
        streak = best = 0
        for ok, _ in mine:
            streak = streak + 1 if ok else 0
            best = max(best, streak)
        lines.append(
            f"{combination.name}: {sum(ok for ok, _ in mine)} of {len(mine)} passed "
            f"(longest run of passes {best}); wall time median {times[len(times) // 2]:.0f}s, "
            f"fastest {times[0]:.0f}s, slowest {times[-1]:.0f}s, total {sum(times):.0f}s"
        )
    return lines


def summary(log: Path) -> str:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1].strip("= ") if lines else "(no output)"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (default: 2)")
    parser.add_argument("--bound", type=float, default=900.0, help="bound (s) of each run (default: 900)")
    parser.add_argument(
        "--only", help="comma-separated combinations, e.g. mosquitto-reference,amqtt-responsive"
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs of each combination (default: 1)")
    parser.add_argument("pytest_args", nargs="*", help="passed to each pytest (after --)")
    args = parser.parse_args(argv)
    combinations = chosen(args.only)
    # Rounds in order (every combination's first run, then every second...), so that a stretch of
    # load on the machine falls on each combination alike.
    waiting = [
        (combination, combination.name if args.repeat == 1 else f"{combination.name}-r{round_}")
        for round_ in range(1, args.repeat + 1)
        for combination in combinations
    ]
    total = len(waiting)
    running: list[Run] = []
    failed: list[Run] = []
    results: list[tuple[Run, bool, float]] = []
    done = 0
    try:
        while waiting or running:
            while waiting and len(running) < args.jobs:
                combination, label = waiting.pop(0)
                running.append(start(combination, label, args.pytest_args))
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
                results.append((run, ok, took))
                verdict = "PASS" if ok else "FAIL"
                print(
                    f"[{done}/{total}] {run.label}: {verdict} in {took:.0f}s: {note} (log: {run.log})",
                    flush=True,
                )
                if run.process.returncode in NO_TESTS_RAN and waiting:
                    # A collection error or a usage error: every later run would end the same way.
                    code = run.process.returncode
                    print(f"{run.label} ran no test (exit {code}): the rest are not started")
                    waiting.clear()
    except KeyboardInterrupt:
        for run in running:
            run.stop()
        raise
    for run in failed:
        tail = run.log.read_text(errors="replace").splitlines()[-TAIL_LINES:]
        print(f"\n---- {run.label}: the last {len(tail)} lines of {run.log}")
        print("\n".join(tail))
    if args.repeat > 1 and results:
        print("\n" + "\n".join(tally(results)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
