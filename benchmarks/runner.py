"""The benchmark runner: runs every ``benchmarks/bench_*.py``, prints a table, writes results.json.

Principle: speed is a ratio (or a percentile) against a baseline measured IN THE SAME RUN on the
same machine, never an absolute time asserted anywhere. Nothing here asserts; it reports.

Usage::

    python -m benchmarks                 # every module, whole run < 5 min on a 2-core machine
    python -m benchmarks --only echo     # one module (the part after ``bench_``); repeatable
    python -m benchmarks --samples 3     # override every module's sample count (ctx.n)
    python -m benchmarks --out FILE      # default: benchmarks/results.json
    python -m benchmarks --only labgrid --merge
                                         # replace only these modules' results in FILE (a module
                                         # that needs another environment: tox -e bench-lab)

Interface of a benchmark module (``benchmarks/bench_<name>.py``)
------------------------------------------------------------------

A module defines::

    from benchmarks.runner import BenchContext, Figure

    def run(ctx: BenchContext) -> list[Figure]: ...

and may define ``BUDGET_S: float`` (the seconds it expects to need; informative only) and
``ORDER: int`` (modules run in ascending ORDER, then name; default 50). The runner imports it,
gives it a fresh ``BenchContext``, and after ``run`` returns (or raises) calls
``ctx.close()``, which stops every board, broker and process started through the context, in
reverse order. An exception is recorded as the module's ``error`` and the run goes on;
``ModuleSkipped(reason)`` (a tool the module needs is not installed) is recorded as
``skipped``, not as an error. A module gets at most ``MODULE_LIMIT_S`` (120 s): then every
thread's stack is printed and SIGALRM raises ``ModuleTimeout`` in ``run`` (so keep the main
thread the one that waits, and aim for <= 30 s). ``run`` is called on the main thread.

``Figure`` (a dataclass; one row of the table, one object of results.json)::

    name: str             e.g. "deploy.cold.wall"
    value: float          the measured statistic (usually the median of the samples)
    unit: str             "s", "ms", "MB/s", "bytes", "MiB", "cpu-s/MB", ...
    baseline_name: str    what it is compared with, e.g. "mpremote fs cp -r"; "" if none
    baseline_value: float | None
    ratio: float | None   value / baseline_value (None without a baseline)
    samples: int          how many samples ``value`` summarises
    spread: dict          {"p10": .., "p90": ..} for samples, or {"stdev": ..}; {} for one sample
    notes: str            anything a reader needs: target, whether it is met, caveats

Build one with ``Figure.from_samples(name, samples, unit, baseline_name=..., baseline=[...],
notes=...)`` (median of each, p10/p90 spread of ``samples``, ratio of the medians) or directly
with ``Figure(...)`` / ``Figure.single(name, value, unit, ...)`` for a one-shot figure.
``benchmarks.stats`` has ``median``, ``percentile(xs, p)``, ``spread(xs)``, ``stdev``.

``BenchContext`` (what ``run`` receives)::

    ctx.root: Path          the repo root (firmware at ctx.root / "firmware")
    ctx.tmp: Path           a fresh temp dir for this module, deleted after it
    ctx.n(default) -> int   the sample count to use: ``--samples`` if given, else ``default``
    ctx.quick: bool         True in smoke tests: use the fewest samples / smallest sizes
    ctx.log(msg)            a progress line on stderr
    ctx.broker(kind="auto") -> Broker
                            rig.broker.make_broker(kind, ctx.tmp/...) started on loopback,
                            locked down (an account for the boards, ``broker.login(HOST)`` for
                            host clients); stopped at ctx.close()
    ctx.virtual_board(name="bench", flash_dir=None) -> VirtualBoard
                            a started rig.board.VirtualBoard (flash in ctx.tmp/flash-<name>
                            unless given); stopped at ctx.close(). Use its ``port_url`` with a
                            CLI (e.g. mpremote) when no Board holds the port.
    ctx.board(name="bench", flash_dir=None, session_log=None) -> Board
                            a connected rig Board over a new VirtualBoard; closed at ctx.close()
                            (or earlier with ctx.release(board)).
    ctx.firmware_config(broker, name="bench", loop_period=0.1) -> FirmwareConfig
                            config.json for a virtual board talking to ``broker``, with the
                            boards' account.
    ctx.deploy(board, config, firmware_dir=None) -> DeployReport
                            rig.deploy.step.deploy_firmware with the warm dependency cache
                            (firmware_dir defaults to ctx.root/"firmware"); main.py runs after.
    ctx.spawn(argv, stdin=, stdout=, text=, cwd=) -> subprocess.Popen (own session, stopped at close)
                            a subprocess killed (by pid) at ctx.close() if still running.
    ctx.on_close(fn)        register any other cleanup (run LIFO at close).
    ctx.release(obj)        stop/close one thing started through ctx now (board, vboard, broker).

results.json::

    {"started": ISO time, "host": {...python, cpus...}, "total_seconds": float,
     "benchmarks": {"<name>": {"seconds": float, "error": str | null, "skipped": str | null,
                               "figures": [Figure, ...]}}}
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import faulthandler
import importlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import stats
from rig.processes import ChildProcess

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_OUT = BENCH_DIR / "results.json"
# No module may run longer than this, unless it states its own LIMIT_S (a module that runs the
# whole HIL suite needs more).
MODULE_LIMIT_S = 120.0
# The account of every board a benchmark runs on ctx.broker() (rig.broker.access).
BENCH_ACCOUNT = "bench"


@dataclass
class Figure:
    name: str
    value: float
    unit: str
    baseline_name: str = ""
    baseline_value: float | None = None
    ratio: float | None = None
    samples: int = 1
    spread: dict[str, float] = field(default_factory=dict)
    notes: str = ""

    @classmethod
    def from_samples(
        cls,
        name: str,
        samples: Sequence[float],
        unit: str,
        *,
        baseline_name: str = "",
        baseline: Sequence[float] | float | None = None,
        notes: str = "",
    ) -> Figure:
        """Median of ``samples`` against the median of ``baseline`` (a list or one value)."""
        value = stats.median(samples)
        if baseline is None:
            base = None
        elif isinstance(baseline, (int, float)):
            base = float(baseline)
        else:
            base = stats.median(baseline) if baseline else None
        return cls(
            name=name,
            value=value,
            unit=unit,
            baseline_name=baseline_name,
            baseline_value=base,
            ratio=stats.ratio(value, base),
            samples=len(samples),
            spread=stats.spread(samples),
            notes=notes,
        )

    @classmethod
    def single(
        cls,
        name: str,
        value: float,
        unit: str,
        *,
        baseline_name: str = "",
        baseline_value: float | None = None,
        samples: int = 1,
        spread: dict[str, float] | None = None,
        notes: str = "",
    ) -> Figure:
        return cls(
            name=name,
            value=float(value),
            unit=unit,
            baseline_name=baseline_name,
            baseline_value=baseline_value,
            ratio=stats.ratio(value, baseline_value),
            samples=samples,
            spread=spread or {},
            notes=notes,
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class BenchContext:
    """What a benchmark module's ``run`` gets: see the module docstring."""

    def __init__(
        self, name: str, root: Path = ROOT, *, samples: int | None = None, quick: bool = False
    ) -> None:
        self.name = name
        self.root = root
        self.samples = samples
        self.quick = quick
        self.tmp = Path(tempfile.mkdtemp(prefix=f"rig-bench-{name}-"))
        self._cleanups: list[tuple[object, Callable[[], None]]] = []

    def n(self, default: int) -> int:
        return self.samples if self.samples is not None else default

    def log(self, msg: str) -> None:
        print(f"  [{self.name}] {msg}", file=sys.stderr, flush=True)

    def on_close(self, fn: Callable[[], None], owner: object = None) -> None:
        self._cleanups.append((owner, fn))

    def release(self, obj: object) -> None:
        """Stop one thing started through the context now, not at close."""
        for i in range(len(self._cleanups) - 1, -1, -1):
            owner, fn = self._cleanups[i]
            if owner is obj:
                del self._cleanups[i]
                fn()
                return

    # -- parts -------------------------------------------------------------------------------

    def broker(self, kind: str = "auto") -> Any:
        from rig.broker import make_broker
        from rig.broker.access import NEIGHBOUR_BOARD, AccessPolicy

        workdir = Path(tempfile.mkdtemp(prefix="broker-", dir=self.tmp))
        # Locked down as in a test run, so that the figures are those of the broker the suite
        # uses: one account for the benchmark's boards (all under rig/bench/), the host's.
        access = AccessPolicy.generate({BENCH_ACCOUNT: "rig/bench"}, f"rig/{NEIGHBOUR_BOARD}")
        broker = make_broker(kind, workdir, access=access)
        broker.start()
        self.on_close(broker.stop, broker)
        return broker

    def virtual_board(self, name: str = "bench", flash_dir: Path | None = None) -> Any:
        from rig.board.virtual import VirtualBoard

        vb = VirtualBoard(name, flash_dir if flash_dir is not None else self.tmp / f"flash-{name}")
        self.on_close(vb.stop, vb)
        vb.start()
        return vb

    def board(
        self, name: str = "bench", flash_dir: Path | None = None, session_log: Path | None = None
    ) -> Any:
        from rig.board.board import Board
        from rig.board.virtual import VirtualBoard

        vb = VirtualBoard(name, flash_dir if flash_dir is not None else self.tmp / f"flash-{name}")
        board = Board(vb, session_log=session_log)
        self.on_close(board.close, board)
        board.connect()
        return board

    def firmware_config(self, broker: Any, name: str = "bench", loop_period: float = 0.1) -> Any:
        from rig.broker.access import board_role
        from rig.firmware_config import FirmwareConfig

        login = broker.login(board_role(BENCH_ACCOUNT))
        return FirmwareConfig(
            broker_host=broker.host,
            broker_port=broker.port,
            client_id=f"bench-{name}-{os.getpid()}",
            topic_prefix=f"rig/bench/{name}/{os.getpid()}",
            loop_period=loop_period,
            broker_user=login.user if login is not None else None,
            broker_password=login.password if login is not None else None,
        )

    def deploy(self, board: Any, config: Any, firmware_dir: Path | None = None) -> Any:
        from rig.deploy.step import deploy_firmware

        return deploy_firmware(board, firmware_dir or self.root / "firmware", config)

    def spawn(
        self,
        argv: Sequence[str],
        *,
        stdin: int | None = subprocess.DEVNULL,
        stdout: int | None = None,
        text: bool = False,
        cwd: Path | None = None,
    ) -> subprocess.Popen[Any]:
        """Start a helper process through the rig's one process helper (its own session, dies
        with the benchmark); ``close`` stops it by PID."""
        child = ChildProcess.spawn(argv, stdin=stdin, stdout=stdout, text=text, cwd=cwd)

        def stop() -> None:
            child.stop(5.0)

        self.on_close(stop, child.popen)  # release(popen) stops it early
        return child.popen

    def close(self) -> list[str]:
        """Run every cleanup, LIFO; return the errors (as text) instead of raising."""
        errors = []
        while self._cleanups:
            _, fn = self._cleanups.pop()
            try:
                fn()
            except Exception as e:
                errors.append(f"cleanup {fn!r}: {e}")
        shutil.rmtree(self.tmp, ignore_errors=True)
        return errors


# -- running ---------------------------------------------------------------------------------


def discover(bench_dir: Path = BENCH_DIR) -> list[str]:
    """Names of the benchmark modules (``bench_<name>.py`` -> ``<name>``), in run order."""
    names = [p.stem[len("bench_") :] for p in bench_dir.glob("bench_*.py")]
    order = {}
    for name in names:
        order[name] = 50
        with contextlib.suppress(Exception):
            text = (bench_dir / f"bench_{name}.py").read_text()
            for line in text.splitlines():
                if line.startswith("ORDER ="):
                    order[name] = int(line.split("=", 1)[1].split("#")[0].strip())
    return sorted(names, key=lambda n: (order[n], n))


class ModuleTimeout(Exception):
    pass


class ModuleSkipped(Exception):
    """Raised by a module's ``run`` that cannot measure here (a tool it needs is missing); the
    message says why. Recorded as the module's ``skipped``, not as an error."""


def _module_timeout(signum: int, frame: object) -> None:
    raise ModuleTimeout("the benchmark module ran past its time limit")


def run_module(
    name: str,
    *,
    package: str = "benchmarks",
    samples: int | None = None,
    quick: bool = False,
    limit: float = MODULE_LIMIT_S,
) -> dict[str, Any]:
    started = time.monotonic()
    ctx = BenchContext(name, samples=samples, quick=quick)
    figures: list[Figure] = []
    error = None
    skipped = None
    # A module that hangs must not take the whole run with it: SIGALRM interrupts the main
    # thread (even in a blocking read), just after the stacks of every thread are printed.
    previous = signal.signal(signal.SIGALRM, _module_timeout)
    faulthandler.dump_traceback_later(max(1.0, limit - 1), exit=False)
    signal.alarm(max(1, int(limit)))
    try:
        module = importlib.import_module(f"{package}.bench_{name}")
        own = getattr(module, "LIMIT_S", None)
        if own is not None and limit == MODULE_LIMIT_S:
            # A module that states a longer bound of its own gets it (bench_parallel: the
            # whole HIL suite twice).
            faulthandler.dump_traceback_later(max(1.0, own - 1), exit=False)
            signal.alarm(max(1, int(own)))
        figures = list(module.run(ctx))
    except ModuleSkipped as e:
        skipped = str(e)
        ctx.log(f"skipped: {skipped}")
    except Exception as e:  # one module's failure must not stop the run
        error = f"{type(e).__name__}: {e}"
        traceback.print_exc()
    finally:
        signal.alarm(0)
        faulthandler.cancel_dump_traceback_later()
        signal.signal(signal.SIGALRM, previous)
        cleanup_errors = ctx.close()
    if cleanup_errors:
        error = "; ".join(filter(None, [error, *cleanup_errors]))
    return {
        "seconds": time.monotonic() - started,
        "error": error,
        "skipped": skipped,
        "figures": [f.to_json() for f in figures],
    }


def _fmt(x: float | None) -> str:
    if x is None:
        return "-"
    if x == 0:
        return "0"
    a = abs(x)
    if a >= 1e5:
        return f"{x:.3g}"
    if a >= 100:
        return f"{x:.0f}"
    if a >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"


def table(results: dict[str, Any]) -> str:
    rows = [("figure", "value", "unit", "baseline", "base value", "ratio", "n", "spread")]
    notes = []
    for bench in results["benchmarks"].values():
        for f in bench["figures"]:
            spread = " ".join(f"{k}={_fmt(v)}" for k, v in f["spread"].items())
            rows.append(
                (
                    f["name"],
                    _fmt(f["value"]),
                    f["unit"],
                    f["baseline_name"] or "-",
                    _fmt(f["baseline_value"]),
                    _fmt(f["ratio"]),
                    str(f["samples"]),
                    spread,
                )
            )
            if f["notes"]:
                notes.append(f"  {f['name']}: {f['notes']}")
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    errors = [f"  {n}: {b['error']}" for n, b in results["benchmarks"].items() if b["error"]]
    skips = [f"  {n}: {b['skipped']}" for n, b in results["benchmarks"].items() if b.get("skipped")]
    timing = ", ".join(f"{n} {b['seconds']:.0f}s" for n, b in results["benchmarks"].items())
    out = "\n".join(lines)
    if notes:
        out += "\n\nnotes:\n" + "\n".join(notes)
    if skips:
        out += "\n\nskipped:\n" + "\n".join(skips)
    if errors:
        out += "\n\nerrors:\n" + "\n".join(errors)
    out += f"\n\ntime: {timing}; total {results['total_seconds']:.0f}s"
    return out


def run(
    names: Sequence[str],
    *,
    out: Path | None = DEFAULT_OUT,
    samples: int | None = None,
    quick: bool = False,
    package: str = "benchmarks",
    earlier: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run ``names``; ``earlier``: a results file whose other modules are kept (``--merge``)."""
    started = time.monotonic()
    results: dict[str, Any] = {
        "started": datetime.datetime.now().isoformat(timespec="seconds"),
        "host": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "total_seconds": 0.0,
        "benchmarks": {},
    }
    for name in names:
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        results["benchmarks"][name] = run_module(name, package=package, samples=samples, quick=quick)
        results["total_seconds"] = time.monotonic() - started
        if out is not None:  # written after each module: a killed run keeps what it measured
            out.write_text(json.dumps(_merged(results, earlier or {}), indent=1) + "\n")
    return results


def _merged(results: dict[str, Any], earlier: dict[str, Any]) -> dict[str, Any]:
    """``earlier`` (a whole results file) with the modules of ``results`` replaced; when and
    where each merged module ran is kept under ``merged``."""
    if not earlier:
        return results
    ran = results["benchmarks"]
    kept = earlier.get("benchmarks", {})
    order = {n: i for i, n in enumerate(discover())}
    names = sorted({*ran, *kept}, key=lambda n: (order.get(n, len(order)), n))
    merged = dict(earlier.get("merged", {}))
    merged.update({n: {"started": results["started"], "host": results["host"]} for n in ran})
    return {**earlier, "benchmarks": {n: ran.get(n, kept.get(n)) for n in names}, "merged": merged}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    parser.add_argument("--only", action="append", metavar="NAME", help="run only this module (repeatable)")
    parser.add_argument("--samples", type=int, help="samples per measurement (overrides each default)")
    parser.add_argument("--quick", action="store_true", help="fewest samples, smallest sizes")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results file (default %(default)s)")
    parser.add_argument(
        "--merge", action="store_true", help="keep the other modules' results already in the results file"
    )
    args = parser.parse_args(argv)
    available = discover()
    names = available
    if args.only:
        unknown = [n for n in args.only if n not in available]
        if unknown:
            parser.error(f"unknown benchmark(s) {', '.join(unknown)}; available: {', '.join(available)}")
        names = [n for n in available if n in args.only]
    earlier: dict[str, Any] = {}
    if args.merge and args.out.exists():
        try:
            earlier = json.loads(args.out.read_text())
            dict(earlier["benchmarks"])
        except (ValueError, KeyError, TypeError) as e:
            parser.error(f"--merge: {args.out} is not a results file ({e})")
    results = run(names, out=args.out, samples=args.samples, quick=args.quick, earlier=earlier)
    print(table(results))
    print(f"\nresults: {args.out}")
    return 1 if any(b["error"] for b in results["benchmarks"].values()) else 0
