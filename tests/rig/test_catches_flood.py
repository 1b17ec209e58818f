"""A firmware that floods its console must not hang the suite: the run ends within a bound, and
a board the rig cannot reach through the flood is named as such.

Each mutant runs two HIL tests in a pytest of their own: one on the firmware as deployed, then
one whose loop period needs a redeploy, which must reach the flooding board (that redeploy once
waited for ever in mpremote). The mutation harness kills an inner run at 240 s; these must end
far sooner.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.rig.mutation import REPO, Mutant, ids, mutate

# Each test runs the suite against broken firmware, in a pytest of its own: the mutation tier.
pytestmark = pytest.mark.mutation

# Measured on a loaded 2-core machine (RIG_TIMEOUT=4): 5-9 s for the flood Ctrl-C stops, 13-14 s
# for the deaf one (the hello wait, two 4 s rungs, a power cycle). Before the rig bounded its
# waits, the deaf one ran until killed. 60 s is the bound; the harness kills at 240 s.
RUN_BOUND = 60.0
SLEEP = "        time.sleep(settings.PERIOD)\n"
TESTS = (
    "tests/hil/test_echo_loop.py::test_injected_message_keeps_circulating[tutorial]",
    "tests/hil/test_echo_loop.py::test_circulates_at_the_reference_one_second_period",
)

MUTANTS = [
    # A debug print where the sleep was: the loop floods, but Ctrl-C still stops it, so the
    # redeploy reaches the board and the echo cadence check fails both tests.
    Mutant(
        "floods its console",
        "main.py",
        SLEEP,
        '        print("x" * 100)\n',
        TESTS[0],
        "is not the loop period",
    ),
    # Waits at boot for a network that never comes, printing each try, and its bare except
    # swallows KeyboardInterrupt: no Ctrl-C reaches a REPL, nor after a hard reset. The hello
    # wait ends in time; the redeploy for the second test gives up within its bound, names the
    # flood, and the board is broken (an infrastructure failure).
    Mutant(
        "floods its console deaf to Ctrl-C",
        "main.py",
        "import time\n",
        "import time\n\nwhile 1:\n    try:\n        while 1:\n            print('waiting for the network')\n"
        "    except:\n        pass\n",
        TESTS[1],
        "no raw REPL even after a hard reset",
    ),
]


@pytest.mark.parametrize("mutant", MUTANTS, ids=ids(MUTANTS))
def test_a_flooding_firmware_ends_the_run_in_time(mutant: Mutant, tmp_path: Path) -> None:
    firmware = mutate(tmp_path / "firmware", mutant)
    env = dict(os.environ, RIG_TIMEOUT="4")
    env.pop("RIG_BROKER_URL", None)
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            *TESTS,
            "-p",
            "no:cacheprovider",
            "-q",
            f"--rig-firmware={firmware}",
            f"--rig-artifacts={tmp_path / 'artifacts'}",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    took = time.monotonic() - started
    output = done.stdout + done.stderr
    assert took < RUN_BOUND, f"the run on a firmware that {mutant.name} took {took:.0f}s:\n{output[-3000:]}"
    assert done.returncode == 1, (
        f"the suite did not fail for a firmware that {mutant.name}:\n{output[-3000:]}"
    )
    assert mutant.cause in output, f"failure does not name the cause {mutant.cause!r}:\n{output[-4000:]}"
    if "deaf" in mutant.name:
        assert "it floods its console" in output, output[-4000:]
        assert "infrastructure failure" in output, output[-4000:]
    else:
        assert "2 failed" in output and "error" not in output.splitlines()[-1], output[-4000:]
