"""The gate's secrets audit fails closed: every run folder it keeps is audited by the gate itself,
with the secrets each run handed over as it made them, killed runs and first attempts too; a
folder without a verdict is "not audited", which fails the board.

The gate runs are real (``main(["gate", ...])``, a pytest subprocess per attempt); their tiny
suites hand a made-up secret over themselves (``rig.evidence.run_audit.hand_over``), as a run's
session does when its broker starts, so that no broker is needed to show the gate's side. That
the session hands its secrets over when they are made, not at its end, is shown on a real
broker at the end of this file.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from rig import gate
from rig import settings as rig_settings
from rig.cli import main
from rig.evidence.run_audit import (
    HANDOFF_ENV,
    VERDICT_NAME,
    audit_folder,
    hand_over,
    read_verdict,
    taken_over,
)
from rig.session import RigSession
from tests.rig.test_gate import FIRMWARE, gate_args, inventory, isolated, make_suite, suites

__all__ = ["inventory", "isolated"]  # the fixtures of test_gate, used here too

PROBE = "probe_password"
# A test that hands a secret over (as a run's session does when its broker starts), writes it
# into an artifact, and then hangs, deaf to the gate's polite SIGINT: only the kill ends it.
LEAK_THEN_HANG = """\
import secrets, signal, time
from pathlib import Path

from rig.evidence.run_audit import hand_over


def test_leaks_then_hangs():
    value = "probe-" + secrets.token_hex(8)
    hand_over({{"{probe}": value}})
    Path("{folder}", "oops.txt").write_text(f"the password is {{value}}\\n")
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    time.sleep(300)
"""
# The first attempt hands a secret over and hangs until killed; the retry passes.
HANG_ONCE = """\
import secrets, signal, time
from pathlib import Path

from rig.evidence.run_audit import hand_over


def test_hangs_the_first_time():
    hand_over({{"{probe}": "probe-" + secrets.token_hex(8)}})
    first = Path("{marker}")
    if not first.exists():
        first.write_text("")
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        time.sleep(300)
"""
# Long enough for a pytest on a busy machine to reach its test, the only bound here.
RUN_TIMEOUT = "10"


@pytest.fixture
def short_graces(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gate.supervise, "INTERRUPT_GRACE", 0.5)
    monkeypatch.setattr(gate.supervise, "TERM_GRACE", 0.5)


# -- a verdict read back ------------------------------------------------------------------------


def test_a_folder_without_a_verdict_was_not_audited_and_fails(tmp_path: Path) -> None:
    folder = tmp_path / "virtual"
    folder.mkdir()
    (folder / "junit.xml").write_text(
        '<testsuite name="pytest" tests="1"><testcase name="test_ok"/></testsuite>'
    )
    attempt = gate.Attempt("virtual", folder, 0, returncode=0, duration=1.0)
    gate.classify(attempt, timeout=60)
    assert attempt.audit is not None and not attempt.audit.clean
    assert attempt.audit.summary == f"not audited: {folder / VERDICT_NAME} is missing"
    assert [(f.name, f.message) for f in attempt.firmware_failures] == [
        ("secrets audit", attempt.audit.summary)
    ]
    assert attempt.category == gate.FIRMWARE


@pytest.mark.parametrize(
    ("text", "why"), [("{", "cannot be read"), ("[]", "holds no verdict"), ("{}", "no verdict")]
)
def test_a_torn_or_foreign_verdict_was_not_audited(tmp_path: Path, text: str, why: str) -> None:
    (tmp_path / VERDICT_NAME).write_text(text)
    verdict = read_verdict(tmp_path)
    assert not verdict.clean and verdict.summary.startswith("not audited: ") and why in verdict.summary


def test_a_folder_audited_with_the_handed_over_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    handoff = tmp_path / "private" / "secrets.jsonl"
    handoff.parent.mkdir()
    hand_over({PROBE: "probe-0123456789"}, {HANDOFF_ENV: str(handoff)})
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "pytest.log").write_text("nothing to see\n")
    assert audit_folder(folder, taken_over(handoff)).clean
    assert read_verdict(folder).summary == "clean (1 secret(s) searched for)"
    (folder / "pytest.log").write_text("E   password probe-0123456789\n")
    assert not audit_folder(folder, taken_over(handoff)).clean
    assert read_verdict(folder).summary == f"secrets found in the artifacts: {folder / 'pytest.log'}: {PROBE}"


def test_runs_that_name_their_secrets_alike_keep_every_value(tmp_path: Path) -> None:
    """Every board's run has a ``broker_password``: the second must not replace the first, or
    the first board's folder would be audited without its own password."""
    handoff = tmp_path / "secrets.jsonl"
    for value in ("first-board-pw", "second-board-pw", "first-board-pw"):
        hand_over({"broker_password": value}, {HANDOFF_ENV: str(handoff)})
    handed = taken_over(handoff)
    assert dict(handed) == {"broker_password": "first-board-pw", "broker_password (2)": "second-board-pw"}


def test_a_torn_hand_over_fails_closed(tmp_path: Path) -> None:
    """A run killed while it wrote its hand-over line leaves half a line: the folder is not
    audited (never clean), and the gate goes on."""
    handoff = tmp_path / "secrets.jsonl"
    handoff.write_text('{"probe_password": "probe-01')
    with pytest.raises(ValueError):
        taken_over(handoff)


# -- the gate ------------------------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.usefixtures("short_graces")
def test_a_run_killed_on_timeout_is_audited_by_the_gate_with_its_handed_over_secrets(
    inventory: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "gate"
    suite = make_suite(tmp_path, LEAK_THEN_HANG.format(probe=PROBE, folder=out / "virtual"))
    code = main(
        gate_args(inventory, out, "--suite", str(suite), "--timeout", RUN_TIMEOUT, "--boards", "virtual")
    )
    printed = capsys.readouterr()
    assert code == 1, printed.out + printed.err
    assert "probe-" not in printed.out + printed.err  # names, never the value
    lines = printed.out.splitlines()
    verdict = next(line for line in lines if line.startswith("virtual: "))
    assert verdict.startswith(
        "virtual: FAIL firmware: 1 failed (secrets audit); also infrastructure: timed out"
    )
    leak = f"secrets found in the artifacts: {out / 'virtual' / 'oops.txt'}: {PROBE}"
    assert f"  secrets audit: virtual {leak}" in lines
    # A leak is never retried: another run would leak again, and this folder is kept anyway.
    assert not (out / "virtual-retry1").exists()
    recorded = json.loads((out / "virtual" / VERDICT_NAME).read_text())
    assert [(leak["file"], leak["key"]) for leak in recorded["leaks"]] == [
        (str(out / "virtual" / "oops.txt"), PROBE)
    ]
    failed = suites(out / "junit.xml")["virtual"].find("testcase[@name='secrets-audit[virtual]']/failure")
    assert failed is not None and failed.get("message") == leak


@pytest.mark.integration
@pytest.mark.usefixtures("short_graces")
def test_the_first_attempts_folder_is_audited_next_to_the_retry_that_passed(
    inventory: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "gate"
    suite = make_suite(tmp_path, HANG_ONCE.format(probe=PROBE, marker=tmp_path / "first-attempt-done"))
    code = main(
        gate_args(inventory, out, "--suite", str(suite), "--timeout", RUN_TIMEOUT, "--boards", "virtual")
    )
    printed = capsys.readouterr()
    assert code == 0, printed.out + printed.err
    lines = printed.out.splitlines()
    assert any(line.startswith("virtual: PASS 1 passed (retried once after: timed out") for line in lines)
    # The killed first attempt never audited itself; the gate did, with the secret it handed over.
    for folder in ("virtual", "virtual-retry1"):
        recorded = json.loads((out / folder / VERDICT_NAME).read_text())
        assert (recorded["clean"], recorded["searched"]) == (True, 2 if folder.endswith("retry1") else 1)
    assert (
        "  secrets audit: virtual clean (1 secret(s) searched for); "
        "virtual-retry1 clean (2 secret(s) searched for)" in lines
    )
    virtual = suites(out / "junit.xml")["virtual"]
    props = [p.get("value") for p in virtual.iter("property") if p.get("name") == "secrets_audit"]
    assert props == [
        "virtual: clean (1 secret(s) searched for)",
        "virtual-retry1: clean (2 secret(s) searched for)",
    ]
    assert ET.tostring(virtual).count(b"secrets-audit[") == 0  # no failing testcase when clean


# -- the run's side: secrets handed over when made ----------------------------------------------


@pytest.mark.integration
def test_a_session_hands_its_broker_secrets_over_when_the_broker_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    handoff = tmp_path / "secrets.jsonl"
    monkeypatch.setenv(HANDOFF_ENV, str(handoff))
    given = {"rig_board": "virtual", "rig_artifacts": "artifacts", "rig_firmware": str(FIRMWARE)}
    session = RigSession(rig_settings.resolve(given.get, tmp_path))
    try:
        session.broker()
        handed = taken_over(handoff)  # before the run's end: a run killed now is audited with them
        assert handed and set(handed) == set(session.secrets())
    finally:
        session.close()
