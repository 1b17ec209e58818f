"""The board's waits after refused SUBSCRIBEs must be able to fail (docs/broker-scenarios.md,
suback-refused-backoff): each mutant takes away one part of the firmware's backoff
(firmware/echo_client.py, subscribe), and the scenario of tests/rig/test_broker_subscribe.py must
fail naming it, on the waits the scripted broker timed itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.rig.mutation import Mutant, assert_caught

pytestmark = pytest.mark.mutation

TEST = (
    "tests/rig/test_broker_subscribe.py::"
    "test_refused_subscribes_wait_longer_each_time_and_start_again_once_granted"
)
REFUSED = (
    "            self.refused_wait = min(wait * 2, settings.BACKOFF_MAX)\n            time.sleep(wait)\n"
)

MUTANTS = [
    Mutant(
        # What the firmware did before: close at once, and umqtt.robust's 2 s before the next try.
        "retries a refused SUBSCRIBE after umqtt.robust's fixed 2 s, without waiting first",
        "echo_client.py",
        "            self.refused = True\n",
        "",
        TEST,
        "the board did not wait after a refused SUBSCRIBE",
        more=(
            (
                "echo_client.py",
                REFUSED,
                "            self.refused_wait = min(wait * 2, settings.BACKOFF_MAX)\n",
            ),
        ),
    ),
    Mutant(
        "waits as long after every refused SUBSCRIBE (no backoff)",
        "echo_client.py",
        REFUSED,
        "            time.sleep(wait)\n",
        TEST,
        "the board's waits after refused SUBSCRIBEs did not grow",
    ),
    Mutant(
        "never starts its waits again after a granted SUBSCRIBE",
        "echo_client.py",
        "        self.subscribing = False\n        self.refused_wait = settings.BACKOFF_INITIAL\n",
        "        self.subscribing = False\n",
        TEST,
        "did not start again",
    ),
]


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.name.split(" (")[0].replace(" ", "-") for m in MUTANTS])
def test_subscribe_backoff_fails_naming_the_cause(mutant: Mutant, tmp_path: Path) -> None:
    assert_caught(mutant, tmp_path)
