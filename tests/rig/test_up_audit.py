"""``rig up`` audits its artifacts once everything stopped: the verdict next to them, printed, and a
non-zero exit on a leak. Real subprocesses, the real broker and the virtual board, as a user runs
it (the helpers are test_cli_up's)."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from rig.deadline import Deadline
from rig.evidence.run_audit import VERDICT_NAME
from tests.rig.test_cli_broker import Lines
from tests.rig.test_cli_up import REPO, START_S, STOP_S, api, read_page, read_until, start, workdir

__all__ = ["workdir"]  # test_cli_up's fixture, used here too

pytestmark = pytest.mark.integration


def up_until_running(folder: Path) -> tuple[Lines, dict[str, str]]:
    """``rig up`` on the virtual board, running; its output and the host's account."""
    process = start(["up", "virtual", "--workdir", str(folder), "--page-port", "0", "--quiet"], REPO)
    lines = Lines(process, "rig up")
    deadline = Deadline(START_S)
    credentials = Path(read_until(lines, r"credentials: (\S+) ", deadline).group(1))
    page = read_page(lines, deadline)
    # The page answers: rig up is past its announcement, in the loop a Ctrl-C ends cleanly.
    assert json.loads(api(page, "api/info").read())["board"] == "virtual"
    return lines, json.loads(credentials.read_text())["accounts"]["host"]


def stop(lines: Lines) -> tuple[int, str]:
    """Ctrl-C; the exit code and whatever it printed after."""
    process = lines.process
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=STOP_S)
    return process.returncode, (lines.buffer + out).decode() + err.decode()


def test_rig_up_audits_its_artifacts_when_it_stops(workdir: Path) -> None:
    lines, _ = up_until_running(workdir)
    try:
        code, printed = stop(lines)
    finally:
        if lines.process.poll() is None:
            lines.process.kill()
    assert code == 0, printed
    verdict = json.loads((workdir / VERDICT_NAME).read_text())
    # The board's account, the host's, the injector's, the neighbour's, the made-up Wi-Fi password.
    assert verdict["clean"] and verdict["searched"] >= 5, verdict
    assert (
        f"secrets audit: {verdict['searched']} secret(s) searched for, none found in the artifacts" in printed
    )


def test_rig_up_exits_non_zero_when_its_artifacts_hold_a_secret(workdir: Path) -> None:
    lines, host = up_until_running(workdir)
    try:
        # What a helper script might do: keep a copy of the login it used among the artifacts.
        (workdir / "notes.txt").write_text(f"mosquitto_sub -u {host['user']} -P {host['password']}\n")
        code, printed = stop(lines)
    finally:
        if lines.process.poll() is None:
            lines.process.kill()
    key = f"broker_password[{host['user']}]"
    assert code == 1, printed
    assert host["password"] not in printed
    assert f"  {workdir / 'notes.txt'}: {key} (" in printed, printed
    verdict = json.loads((workdir / VERDICT_NAME).read_text())
    assert [(leak["file"], leak["key"]) for leak in verdict["leaks"]] == [(str(workdir / "notes.txt"), key)]
