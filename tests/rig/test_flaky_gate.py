"""The gate's verdict on rig.flaky's results (rig.gate.classify reads run.json): a quarantined
failure does not fail the gate and is counted quarantined; a test that failed and passed when
run again is counted flaky, never passed."""

from __future__ import annotations

import datetime

import pytest

from rig import gate
from tests.rig.inner_pytest import rig_args

pytest_plugins = ["pytester"]

TESTS = """
from rig.errors import BoardUnreachable

runs = []


def test_flaky():
    runs.append(1)
    if len(runs) == 1:
        raise BoardUnreachable("port vanished")


def test_known_bad():
    assert False, "races the keepalive"


def test_fine():
    pass
"""


def _run(inner: pytest.Pytester, quarantined: bool) -> gate.Attempt:
    inner.makepyfile(test_g=TESTS)
    if quarantined:
        later = (datetime.date.today() + datetime.timedelta(days=7)).isoformat()
        (inner.path / "quarantine.yaml").write_text(
            f"quarantine:\n  - test: test_g.py::test_known_bad\n    reason: '#42'\n    expires: {later}\n"
        )
    result = inner.runpytest("-p", "no:cacheprovider", *rig_args(inner))
    attempt = gate.Attempt("virtual", inner.path / "artifacts", 0, returncode=int(result.ret), duration=1.0)
    gate.classify(attempt, timeout=60, unaudited=None)
    return attempt


def test_a_quarantined_failure_passes_the_gate_and_flaky_is_counted_apart(inner: pytest.Pytester) -> None:
    attempt = _run(inner, quarantined=True)
    assert attempt.source == "run.json"
    assert attempt.counts == {"passed": 1, "flaky": 1, "quarantined": 1}
    assert attempt.firmware_failures == [] and attempt.infrastructure_failures == []
    assert attempt.category == gate.PASS
    assert gate.outcome_text(attempt) == "1 passed, 1 flaky, 1 quarantined"


def test_without_the_quarantine_the_same_failure_fails_the_gate(inner: pytest.Pytester) -> None:
    attempt = _run(inner, quarantined=False)
    assert [f.name for f in attempt.firmware_failures] == ["test_known_bad"]
    assert attempt.category == gate.FIRMWARE
