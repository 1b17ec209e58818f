"""``rig up`` and ``rig page`` as a user runs them: real subprocesses, the real broker, the virtual
board, a real MQTT client with the accounts ``rig up`` wrote; Ctrl-C (SIGINT) must leave no
process and no credentials behind, and the firmware must have said goodbye cleanly."""

from __future__ import annotations

import _thread
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from serial.tools.list_ports_common import ListPortInfo

from rig.broker.access import Login
from rig.broker.mosquitto import find_mosquitto
from rig.deadline import Deadline
from rig.host_client import HostClient
from tests.rig.bench_browser import write_run
from tests.rig.processes_left import processes_naming
from tests.rig.test_cli_broker import Lines

REPO = Path(__file__).resolve().parents[2]
START_S = 60.0
TOKEN = "token-of-this-test"
STOP_S = 20.0


def _default_sigint() -> None:
    # A runner started in the background may have SIGINT ignored; a terminal would not.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(argv: list[str], cwd: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIG_")}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.Popen(
        [sys.executable, "-m", "rig.cli", *argv],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=_default_sigint,
    )


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    """The command's workdir; no process naming it may outlive the test."""
    folder = tmp_path / "up"
    folder.mkdir()
    yield folder
    left = processes_naming(str(folder))
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, f"processes left after rig up: {left}"


def read_until(lines: Lines, pattern: str, deadline: Deadline) -> re.Match[str]:
    seen = []
    while True:
        line = lines.next(deadline)
        seen.append(line)
        found = re.match(pattern, line)
        if found:
            return found
        if len(seen) > 200:
            pytest.fail(f"no line matching {pattern!r} in the first 200: {seen[-10:]}")


# The page's URL as the commands print it: the run's token in it (rig.bench_page.access).
PAGE = r"page: (http://\S+/)\?token=([\w-]+)$"


def read_page(lines: Lines, deadline: Deadline) -> tuple[str, str]:
    """(the page's address, its token) from the command's output."""
    found = read_until(lines, PAGE, deadline)
    return found.group(1), found.group(2)


def api(page: tuple[str, str], path: str, timeout: float = 10) -> Any:
    """``path`` of the page opened as a script does: the token as a bearer."""
    address, token = page
    request = urllib.request.Request(address + path, headers={"Authorization": f"Bearer {token}"})
    return urllib.request.urlopen(request, timeout=timeout)


def test_rig_up_runs_the_tutorial_and_ctrl_c_leaves_nothing(workdir: Path) -> None:
    process = start(
        ["up", "virtual", "--workdir", str(workdir), "--page-port", "0", "--loop-period", "0.2"], REPO
    )
    try:
        deadline = Deadline(START_S)
        lines = Lines(process, "rig up")
        # Which broker runs, with its version: results differ between them.
        expected = "mosquitto" if find_mosquitto() else "amqtt"
        read_until(lines, rf"broker: {expected} \d[\w.]*$", deadline)
        mqtt = read_until(lines, r"mqtt: mqtt://([\d.]+):(\d+)$", deadline)
        topics = read_until(lines, r"board: virtual: echo topic (\S+), status topic (\S+)$", deadline)
        credentials = Path(
            read_until(lines, r"credentials: (\S+) \(readable by you only\)$", deadline).group(1)
        )
        subscribe = read_until(lines, r"subscribe: (mosquitto_sub .*)$", deadline).group(1)
        page = read_page(lines, deadline)

        info = json.loads(api(page, "api/info").read())
        assert info["mode"] == "live" and info["echo_topic"] == topics.group(1), info
        account = json.loads(credentials.read_text())["accounts"]["host"]
        host = HostClient(
            mqtt.group(1),
            int(mqtt.group(2)),
            "test-up-host",
            login=Login(account["user"], account["password"]),
        )
        host.connect(10)
        try:
            host.subscribe(topics.group(1))
            host.publish(topics.group(1), b"11 22 3311")
            # The board echoes it back: it arrives again after the host's own copy.
            host.wait_count(topics.group(1), b"11 22 3311", 3, 10)
            # The printed subscribe command, pasted into a shell, sees the board's echo.
            password = account["password"]
            assert password not in subscribe, "the subscribe command shows the password"
            for sub in subscribe_commands(workdir.parent):
                watch_echo_as_printed(sub, subscribe, host, topics.group(1))
        finally:
            host.close()

        process.send_signal(signal.SIGINT)
        assert process.wait(STOP_S) == 0
        _, err = process.communicate(timeout=STOP_S)
        assert b"warning" not in err, err.decode()
        assert not credentials.exists(), "the credentials outlived rig up"
        broker_log = (workdir / "broker" / "mosquitto.log").read_text()
        # The firmware's finally ran: a clean DISCONNECT, so no will ("lost") was published.
        assert "Client rig-virtual disconnected." in broker_log, broker_log[-2000:]
        assert "Client rig-virtual closed its connection" not in broker_log
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=STOP_S)


def subscribe_commands(scratch: Path) -> list[dict[str, str]]:
    """The environments to run the printed line in: with the real mosquitto_sub when installed
    (mosquitto-clients), and always with the paho stand-in in its place, on PATH first."""
    standin = scratch / "standin-bin"
    standin.mkdir(exist_ok=True)
    script = standin / "mosquitto_sub"
    script.write_text(
        f'#!/bin/sh\nexec "{sys.executable}" "{REPO}/tests/rig/mosquitto_sub_standin.py" "$@"\n'
    )
    script.chmod(0o755)
    environments = [{**os.environ, "PATH": f"{standin}{os.pathsep}{os.environ['PATH']}"}]
    if shutil.which("mosquitto_sub") is not None:
        environments.insert(0, dict(os.environ))
    return environments


def watch_echo_as_printed(env: dict[str, str], command: str, host: HostClient, echo_topic: str) -> None:
    """Run ``command`` as a person pastes it (a shell line): it must see a payload the host
    publishes twice, the host's copy and the board's echo. The same line without its login
    must be refused by the locked-down broker: the test can tell a refusal."""
    which = shutil.which("mosquitto_sub", path=env["PATH"])
    sub = subprocess.Popen(
        ["sh", "-c", command], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=os.setsid
    )
    try:
        lines = Lines(sub, f"the printed subscribe command ({which})")
        deadline = Deadline(20)
        # Subscribed once the board's circulating hello comes through.
        read_until(lines, rf"{re.escape(echo_topic)} hello$", deadline)
        payload = f"seen by {Path(str(which)).parent.name}"
        host.publish(echo_topic, payload.encode())
        read_until(lines, rf"{re.escape(echo_topic)} {payload}$", deadline)
        read_until(lines, rf"{re.escape(echo_topic)} {payload}$", deadline)  # the board's echo
    finally:
        with contextlib.suppress(ProcessLookupError):  # it may have exited already
            os.killpg(sub.pid, signal.SIGTERM)
        sub.communicate(timeout=STOP_S)
    login = re.search(r' -u \S+ -P "\$\(.*\)"', command)
    assert login is not None, command
    anonymous = command.replace(login.group(0), "")
    refused = subprocess.run(["sh", "-c", anonymous], env=env, capture_output=True, timeout=20)
    assert refused.returncode != 0 and b"Connection" in refused.stderr, refused


def test_rig_page_lists_a_finished_runs_tests_and_refuses_another_folder(tmp_path: Path) -> None:
    artifacts = tmp_path / "artifacts"
    ran = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/hil/test_console.py",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--rig-artifacts={artifacts}",
        ],
        cwd=REPO,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("RIG_")}, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert ran.returncode == 0, ran.stdout[-2000:]
    process = start(["page", str(artifacts), "--page-port", "0"], tmp_path)
    try:
        lines = Lines(process)
        page = read_page(lines, Deadline(START_S))
        runs = json.loads(api(page, "api/runs").read())
        assert len(runs["tests"]) == 3 and all("test_console" in t["nodeid"] for t in runs["tests"]), runs
        process.send_signal(signal.SIGINT)
        assert process.wait(STOP_S) == 0
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=STOP_S)
    refused = start(["page", str(tmp_path / "nothing-here")], tmp_path)
    _, err = refused.communicate(timeout=STOP_S)
    assert refused.returncode == 2 and b"no such folder" in err, err


def test_the_page_listens_beyond_loopback_only_when_told_and_says_what_that_exposes(
    tmp_path: Path, workdir: Path
) -> None:
    artifacts = write_run(tmp_path)
    for command, cwd in (
        (["page", str(artifacts), "--page-host", "0.0.0.0", "--page-port", "0"], tmp_path),
        # Refused before anything starts: no broker, no deploy.
        (["up", "virtual", "--workdir", str(workdir), "--page-host", "0.0.0.0", "--page-port", "0"], REPO),
    ):
        refused = start(command, cwd)
        out, err = refused.communicate(timeout=STOP_S)
        assert refused.returncode == 2, (command, out, err)
        assert b"--page-host: '0.0.0.0' is not a loopback address" in err and b"--page-expose" in err, err
        assert b"deploying" not in err and b"page:" not in out, err
    process = start(
        ["page", str(artifacts), "--page-host", "0.0.0.0", "--page-expose", "--page-port", "0"], tmp_path
    )
    try:
        lines = Lines(process)
        address, token = read_page(lines, Deadline(START_S))
        # Listening on every address, it is reached on loopback too; the token still decides.
        page = ("http://127.0.0.1:" + address.rsplit(":", 1)[1], token)
        assert json.loads(api(page, "api/runs").read())["tests"]
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=STOP_S)
        assert process.returncode == 0
        warning = err.decode()
        for what in ("0.0.0.0", "console", "MQTT history", "inject", "cut its power", "token"):
            assert what in warning, f"the warning does not say {what!r}: {warning}"
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=STOP_S)


def test_rig_up_takes_a_usb_board_found_by_discovery(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A board on USB (a virtual board stands in, at its pty, with a CP2102's identity): ``rig
    up`` with no board named finds it, runs the tutorial on it, and the page says so; Ctrl-C
    (here ``interrupt_main``, as a terminal's) stops it cleanly."""
    from rig.board import VirtualBoard
    from rig.cli import main as rig

    plugged = VirtualBoard("plugged-in", tmp_path / "plugged-flash")
    plugged.start()
    try:
        record = ListPortInfo(plugged.port_url, skip_link_detection=True)
        record.vid, record.pid, record.serial_number = 0x10C4, 0xEA60, "BENCH01"
        record.description = "CP2102 USB to UART Bridge Controller"
        monkeypatch.setattr("rig.discovery.ports.list_serial_ports", lambda: [record])
        inventory = tmp_path / "boards.yaml"
        # The stand-in lives on this machine: the broker is on its loopback.
        inventory.write_text(
            "boards:\n  - name: bench-esp\n    kind: esp32\n"
            "    match: {vid: 0x10c4, pid: 0xea60, serial_number: BENCH01}\n"
            "    network: {broker_host: 127.0.0.1}\n"
        )
        for name in [k for k in os.environ if k.startswith("RIG_")]:
            monkeypatch.delenv(name)
        monkeypatch.setenv("RIG_LOCK_DIR", str(tmp_path / "locks"))
        # The token rig up prints, known here: this test reads no stdout.
        monkeypatch.setattr("rig.bench_page.server.new_token", lambda: TOKEN)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        seen: dict[str, object] = {}

        def watch() -> None:
            # The page is served only once the board said hello: when it answers, Ctrl-C.
            deadline = Deadline(START_S)
            try:
                while not deadline.expired:
                    try:
                        seen["info"] = json.loads(
                            api((f"http://127.0.0.1:{port}/", TOKEN), "api/info", timeout=2).read()
                        )
                        break
                    except OSError:
                        time.sleep(0.2)
            finally:
                _thread.interrupt_main()

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        code = rig(
            [
                "up",
                "--inventory",
                str(inventory),
                "--workdir",
                str(tmp_path / "up"),
                "--page-port",
                str(port),
                "--quiet",
                "--firmware",
                str(REPO / "firmware"),
            ]
        )
        watcher.join(10)
        assert code == 0
        info = seen.get("info")
        assert isinstance(info, dict) and info["board"] == "bench-esp", seen
        assert info["echo_topic"] == "rig/bench-esp/echo"
        # A USB ESP32 is reset through its EN line (RTS): the page offers the power-cut button.
        assert "power_cut" not in info["unavailable"], info
        assert plugged.boots > 1, "rig up did not restart the plugged-in board's firmware"
    finally:
        plugged.stop()


def test_rig_up_keeps_the_board_going_when_nobody_reads_its_stdout(workdir: Path) -> None:
    """The console goes to stdout from a thread of its own: a pipe nobody reads fills up (64 KB),
    and the capture, and with it the board, must not wait for it."""
    process = start(
        ["up", "virtual", "--workdir", str(workdir), "--page-port", "0", "--loop-period", "0.02"], REPO
    )
    try:
        deadline = Deadline(START_S)
        lines = Lines(process)
        mqtt = read_until(lines, r"mqtt: mqtt://([\d.]+):(\d+)$", deadline)
        echo = read_until(lines, r"board: virtual: echo topic (\S+),", deadline).group(1)
        credentials = Path(read_until(lines, r"credentials: (\S+) ", deadline).group(1))
        page = read_page(lines, deadline)
        account = json.loads(credentials.read_text())["accounts"]["host"]
        host = HostClient(
            mqtt.group(1),
            int(mqtt.group(2)),
            "test-up-unread",
            login=Login(account["user"], account["password"]),
        )
        host.connect(10)
        try:
            host.subscribe(echo)
            # hello circulates every 20 ms and each turn prints a few lines: well past what a pipe
            # holds by the time this many hellos came back, with stdout unread all along.
            host.wait_count(echo, b"hello", 700, 40)
        finally:
            host.close()
        # The console still reaches the page: a line newer than the pipe's filling.
        since = time.time()
        assert fresh_console_line(page, since, Deadline(15)), "the console stalled: no new line on the page"
        process.send_signal(signal.SIGINT)
        # Read what is left, so that the command can flush and end.
        out, _ = process.communicate(timeout=STOP_S)
        assert process.returncode == 0
        # Everything it held back is shown in the end (a console writing on the reader thread
        # fails above: measured, the page's console stalls once the pipe is full).
        assert out.count(b"hello") >= 600, "the console lines held back were lost"
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=STOP_S)


def fresh_console_line(page: tuple[str, str], since: float, deadline: Deadline) -> bool:
    """True once the page's event stream carries a console line stamped after ``since``."""
    with api(page, "api/events", timeout=5) as stream:
        while not deadline.expired:
            line = stream.readline()
            if not line:
                return False
            if line.startswith(b"data: "):
                event = json.loads(line[6:])
                if event.get("kind") == "console" and event.get("t", 0) > since:
                    return True
    return False
