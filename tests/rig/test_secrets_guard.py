"""The guards of issue 11 can fail: a broker without the ACL lets the neighbour in, a secret in
a run's artifacts fails the run, and a secret in the gate's report fails the gate; each failure
names the file and the secret's key, never its value."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rig.broker.mosquitto import find_mosquitto
from rig.cli import main
from rig.discovery import ports as discovery_ports
from tests.rig.gate_inventory import write_gate_inventory

# Each test runs the suite against broken firmware, in a pytest of its own: the mutation tier.
pytestmark = pytest.mark.mutation

REPO = Path(__file__).resolve().parents[2]
NEIGHBOUR_TEST = (
    "tests/hil/test_security.py::test_another_boards_account_can_neither_read_nor_write_this_boards_topics"
)
# A plugin for the inner run: mosquitto's ACL file grants every account every topic.
NO_ACL_PLUGIN = """
from rig.broker import mosquitto_access


def _everything(policy):
    return "".join(f"user {a.login.user}\\ntopic readwrite #\\n" for a in policy.accounts)


mosquitto_access.acl_text = _everything
"""
LEAKY_SUITE = """\
from rig.broker.access import HOST


def test_writes_a_password_into_its_artifacts(broker, rig_artifacts):
    (rig_artifacts / "debug.txt").write_text("connect with " + broker.login(HOST).password + "\\n")
"""
FAILING_WITH_A_SECRET = """\
import os
from pathlib import Path

from rig.broker.access import HOST


def test_fails_showing_a_password(broker):
    # The hand-over file this run was given: the outer test checks that its gate removed it.
    Path({record!r}).write_text(os.environ.get("RIG_SECRETS_FILE", ""))
    assert broker.login(HOST).password == "x"
"""


def run_pytest(tmp_path: Path, *args: str, plugin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIG_")}
    paths = [str(REPO)]
    if plugin is not None:
        (tmp_path / "plugins").mkdir()
        (tmp_path / "plugins" / "rig_test_plugin.py").write_text(plugin)
        paths.append(str(tmp_path / "plugins"))
        args = ("-p", "rig_test_plugin", *args)
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_a_broker_without_the_acl_lets_the_neighbour_in_and_the_test_says_so(tmp_path: Path) -> None:
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed")
    done = run_pytest(
        tmp_path,
        NEIGHBOUR_TEST,
        "--rig-broker=mosquitto",
        f"--rig-artifacts={tmp_path / 'artifacts'}",
        plugin=NO_ACL_PLUGIN,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1 and "1 failed" in output, output[-3000:]
    assert "the neighbour's message reached this board's topic" in output, output[-3000:]


def test_a_secret_in_the_artifacts_fails_the_run_naming_file_and_key(tmp_path: Path) -> None:
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "conftest.py").write_text('pytest_plugins = ["rig.plugin"]\n')
    (suite / "test_leaky.py").write_text(LEAKY_SUITE)
    artifacts = tmp_path / "artifacts"
    done = run_pytest(
        tmp_path, str(suite), f"--rig-artifacts={artifacts}", f"--rig-firmware={REPO / 'firmware'}"
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1, output[-3000:]
    assert "1 passed" in output, output[-3000:]  # the test passed: the audit failed the run
    assert "secrets audit FAILED" in output and "debug.txt: broker_password[rig-host]" in output, output
    verdict = json.loads((artifacts / "secrets-audit.json").read_text())
    assert not verdict["clean"] and verdict["leaks"][0]["key"] == "broker_password[rig-host]"
    leaked = (next(artifacts.rglob("debug.txt")).read_text().split() or [""])[-1]
    assert leaked and leaked not in output and leaked not in json.dumps(verdict)


def test_a_secret_in_the_report_fails_the_gate_naming_the_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A test whose failure message shows a password: the run's audit finds it in run.json and
    junit.xml, and the gate's own audit finds it in the report, which quotes the message."""
    for name in [k for k in os.environ if k.startswith("RIG_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("RIG_LOCK_DIR", str(tmp_path / "locks"))
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.setattr(discovery_ports, "list_serial_ports", lambda: [])
    monkeypatch.chdir(REPO)
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "conftest.py").write_text('pytest_plugins = ["rig.plugin"]\n')
    record = tmp_path / "handoff-path.txt"  # outside the gate's --out: not an artifact
    (suite / "test_tiny.py").write_text(textwrap.dedent(FAILING_WITH_A_SECRET.format(record=str(record))))
    out = tmp_path / "gate"
    code = main(
        [
            "gate",
            "--firmware",
            str(REPO / "firmware"),
            "--inventory",
            str(write_gate_inventory(tmp_path)),
            "--out",
            str(out),
            "--suite",
            str(suite),
            "--boards",
            "virtual",
        ]
    )
    captured = capsys.readouterr()
    printed = captured.out
    assert code == 1, printed + captured.err
    assert "secrets audit" in printed and "broker_password[rig-host]" in printed, printed
    gate_verdict = json.loads((out / "secrets-audit.json").read_text())
    assert "report.html" in {Path(leak["file"]).name for leak in gate_verdict["leaks"]}, gate_verdict
    # This gate's own private folder, not any rig-gate-secrets-* (a gate running in parallel,
    # under pytest -n, has its own there meanwhile).
    handoff = Path(record.read_text())
    assert handoff.parent.name.startswith("rig-gate-secrets-"), f"the run was handed {handoff}"
    assert not handoff.parent.exists(), f"the gate left its secrets folder behind: {handoff.parent}"
