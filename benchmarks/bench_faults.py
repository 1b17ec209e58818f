"""Faults: how long the firmware takes to notice each fault, and to be back at work once it ends.

Runs the fault tests (``tests/hil/test_faults.py``, keepalive 2 s, socket timeout 2 s) in a
pytest of their own, as the suite does, and reads what each drill recorded in JUnit's
properties (``fault.<name>.detect_s`` / ``resume_s``). Each figure stands next to the bound the
firmware documents for it:

- detect: 1.5 keepalives (firmware/link_watch.py), met within one loop turn and the console's
  delay (the watch looks once per turn); a broker that stopped is heard of at once
  (its time is mostly the broker's own shutdown);
- resume: the reconnect delay of umqtt.robust (2 s) plus one attempt bounded by the socket
  timeout, plus a loop period for the first echo. A slow link is not a fault: its resume is
  one echo, bounded by a loop period.

Where the board can have no network of its own (not root), the network faults skip and only
the broker's figures appear. Reported, never asserted (the tests assert).
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict

from benchmarks.runner import BenchContext, Figure
from rig.faults.drill import ROBUST_DELAY_S

ORDER = 60
BUDGET_S = 50

KEEPALIVE_S = 2.0  # as tests/hil/test_faults.py asks
SOCKET_TIMEOUT_S = 2.0
LOOP_PERIOD_S = 0.1  # the suite's default
RESUME_BOUND = {"slow_link": LOOP_PERIOD_S}


# The watch looks once per loop turn, and its line takes a moment to reach the rig's console.
DETECT_SLACK_S = LOOP_PERIOD_S + 0.1


def _bound(figure: str, fault: str) -> tuple[str, float]:
    if figure == "detect_s":
        return "bound: 1.5 x keepalive", 1.5 * KEEPALIVE_S
    if fault in RESUME_BOUND:
        return "bound: a loop period", RESUME_BOUND[fault]
    return (
        "bound: robust delay + socket timeout + loop period",
        ROBUST_DELAY_S + SOCKET_TIMEOUT_S + LOOP_PERIOD_S,
    )


def run(ctx: BenchContext) -> list[Figure]:
    runs = ctx.n(1)
    samples: dict[tuple[str, str], list[float]] = defaultdict(list)
    for i in range(runs):
        junit = ctx.tmp / f"junit-{i}.xml"
        ctx.log(f"fault tests, run {i + 1}/{runs}")
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                str(ctx.root / "tests" / "hil" / "test_faults.py"),
                f"--rig-firmware={ctx.root / 'firmware'}",
                f"--rig-artifacts={ctx.tmp / f'artifacts-{i}'}",
                f"--junitxml={junit}",
            ],
            cwd=ctx.root,
            env=dict(os.environ, PYTHONPATH=str(ctx.root)),
            capture_output=True,
            text=True,
            timeout=110,
        )
        if done.returncode not in (0, 5) or not junit.exists():
            raise RuntimeError(f"fault tests failed ({done.returncode}):\n{done.stdout[-3000:]}")
        for prop in ET.parse(junit).iter("property"):
            parts = (prop.get("name") or "").split(".")
            if len(parts) == 3 and parts[0] == "fault" and parts[2] in ("detect_s", "resume_s"):
                samples[(parts[1], parts[2])].append(float(prop.get("value") or "nan"))
    figures = []
    for (fault, figure), values in sorted(samples.items()):
        name, bound = _bound(figure, fault)
        value = sorted(values)[len(values) // 2]
        slack = DETECT_SLACK_S if figure == "detect_s" else 0.0
        met = "met" if value <= bound + slack else "NOT met"
        if slack:
            met += f" (within {slack:g}s: one loop turn and the console)"
        figures.append(
            Figure.from_samples(
                f"faults.{fault}.{figure.removesuffix('_s')}",
                values,
                "s",
                baseline_name=name,
                baseline=bound,
                notes=f"keepalive {KEEPALIVE_S:g}s, socket timeout {SOCKET_TIMEOUT_S:g}s; bound {met}",
            )
        )
    return figures
