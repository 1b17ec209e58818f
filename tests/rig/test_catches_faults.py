"""The fault tests must be able to fail: each mutant takes away one thing the firmware does
about a fault, and the fault test that guards it must fail naming the cause.

The network faults need the virtual board's own network namespace (root, iproute2); where
there is none those tests skip, and so do their mutants here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rig import netns
from tests.rig.mutation import Mutant, assert_caught, ids

# Each test runs the suite against broken firmware, in a pytest of its own: the mutation tier.
pytestmark = pytest.mark.mutation

FAULTS = "tests/hil/test_faults.py::"

MUTANTS = [
    Mutant(
        "has no silent-link detection",
        "link_watch.py",
        "        if silent > KEEPALIVE_MS * 3 // 2:\n",
        "        if False:\n",
        FAULTS + "test_blackholed_link_is_found_by_the_keepalive_watch",
        "the firmware did not detect the blackhole within",
    ),
    Mutant(
        "has no socket timeout",
        "link_watch.py",
        # Only the timeout every new socket gets: the one set before each ping stays, so the
        # connect and its CONNACK wait are what a wedged broker holds forever.
        "        s.settimeout(SOCKET_TIMEOUT)\n        no_delay(s)\n",
        "        no_delay(s)\n",
        FAULTS + "test_wedged_broker_does_not_wedge_the_board",
        "its socket has no timeout, so a broker that does not answer wedges it",
    ),
    Mutant(
        "does not reconnect after link loss",
        "echo_client.py",
        # One attempt, no retry: connect_retry is what keeps trying until the broker is back.
        "        present = connect_retry.connect(self, False, True)\n",
        "        present = MQTTClient.connect(self, False)  # umqtt.simple's: one attempt, no retry\n",
        FAULTS + "test_link_down_is_detected_and_the_board_comes_back",
        "the board did not reconnect within",
    ),
]

NEEDS_NETWORK = {"has no silent-link detection", "does not reconnect after link loss"}


@pytest.mark.faults
@pytest.mark.parametrize("mutant", MUTANTS, ids=ids(MUTANTS))
def test_fault_tests_fail_naming_the_cause(mutant: Mutant, tmp_path: Path) -> None:
    reason = netns.unavailable()
    if mutant.name in NEEDS_NETWORK and reason is not None:
        pytest.skip(f"the fault test this mutant breaks needs the board's own network: {reason}")
    assert_caught(mutant, tmp_path)
