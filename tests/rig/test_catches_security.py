"""The security checks can fail: a firmware that ignores its credentials, one that gives up (or
crash-loops) on a refused login instead of backing off, one that trusts any certificate; each
caught by the test that watches for it, with a message naming the cause (``tests.rig.mutation``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.rig.mutation import Mutant, assert_caught, ids

# Each test runs the suite against broken firmware, in a pytest of its own: the mutation tier.
pytestmark = pytest.mark.mutation

HELLO_TEST = "tests/hil/test_echo_loop.py::test_boots_connects_and_publishes_hello"
REFUSED_TEST = (
    "tests/hil/test_security.py::test_the_firmware_reports_a_refused_login_and_retries_with_a_backoff"
)
TLS_NAME_TEST = (
    "tests/hil/test_security.py::test_a_certificate_the_board_must_not_trust_fails_the_connection_naming_why"
    "[another name]"
)

REFUSAL_EVENT = (
    '            emit("connect_refused", code=code, reason=reason, **waiting(attempt, backoff, reconnect))\n'
)

MUTANTS = [
    Mutant(
        "ignores its credentials",
        "main.py",
        "    user=settings.BROKER_USER,\n    password=settings.BROKER_PASSWORD,\n",
        "",
        HELLO_TEST,
        "refused the board's login as 'board-virtual': CONNACK 5 (not authorized)",
        outcome="1 error",  # in the board fixture's set-up: the firmware never got in
    ),
    Mutant(
        "retries a refused login without waiting",
        "connect_retry.py",
        "        time.sleep(backoff)\n        backoff = min(backoff * 2, settings.BACKOFF_MAX)\n",
        "",
        REFUSED_TEST,
        "no backoff: delays",
    ),
    Mutant(
        "gives up on a refused login",
        "connect_retry.py",
        REFUSAL_EVENT,
        REFUSAL_EVENT + "            raise\n",
        REFUSED_TEST,
        "waiting for serial event 'connect_refused' with attempt=2",
    ),
    Mutant(
        "trusts any certificate",
        "ussl.py",
        "        ctx.verify_mode = ssl.CERT_REQUIRED\n",
        "        ctx.verify_mode = ssl.CERT_NONE\n",
        TLS_NAME_TEST,
        "it does not check the server's certificate",
    ),
]


@pytest.mark.parametrize("mutant", MUTANTS, ids=ids(MUTANTS))
def test_security_check_fails_naming_the_cause(mutant: Mutant, tmp_path: Path) -> None:
    assert_caught(mutant, tmp_path)
