"""The bench path of the plugin: inventory, discovery and locking, as a run on USB boards uses it.

What cannot be real here is a USB device's identity: its vid/pid/serial come from fabricated
pyserial records. Behind them stands the virtual board's pty, so everything from the port up is
the real code path of a USB board.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from serial.tools.list_ports_common import ListPortInfo

from rig.board import VirtualBoard

REPO = Path(__file__).resolve().parents[2]

pytest_plugins = ["pytester"]

USB_BOARD = """
boards:
  - name: bench-esp
    kind: esp32
    match: {vid: 0x10c4, pid: 0xea60, serial_number: "X1"}
    network: {broker_host: 127.0.0.1}
"""


def fabricated_conftest(ports: list[tuple[str, str]]) -> str:
    """A conftest that loads the rig and makes discovery see these (device, serial) CP2102s."""
    return textwrap.dedent(
        f"""
        import rig.discovery.ports
        from serial.tools.list_ports_common import ListPortInfo

        def _ports():
            records = []
            for device, serial in {ports!r}:
                r = ListPortInfo(device, skip_link_detection=True)
                r.vid, r.pid, r.serial_number = 0x10C4, 0xEA60, serial
                r.description = "CP2102 USB to UART Bridge Controller"
                records.append(r)
            return records

        rig.discovery.ports.list_serial_ports = _ports
        pytest_plugins = ["rig.plugin"]
        """
    )


@pytest.fixture
def inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.Pytester:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    for name in list(os.environ):
        if name.startswith("RIG_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("RIG_LOCK_DIR", str(tmp_path / "locks"))
    return pytester


def args(pytester: pytest.Pytester, *extra: str) -> list[str]:
    return [
        f"--rig-firmware={REPO / 'firmware'}",
        f"--rig-artifacts={pytester.path / 'artifacts'}",
        "-rs",
        *extra,
    ]


def test_an_absent_board_skips_its_tests_saying_what_was_searched(inner: pytest.Pytester) -> None:
    (inner.path / "boards.yaml").write_text(USB_BOARD)
    inner.makeconftest(fabricated_conftest([("/dev/ttyUSB7", "OTHER")]))
    inner.makepyfile("def test_echo(board): pass\ndef test_again(board): pass\n")
    result = inner.runpytest_subprocess(*args(inner, "--rig-board=bench-esp"), timeout=60)
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(
        ["*bench-esp*vid:pid 10c4:ea60*serial_number X1*", "*/dev/ttyUSB7*10c4:ea60*OTHER*"]
    )


def test_two_runs_never_share_a_board(inner: pytest.Pytester, tmp_path: Path) -> None:
    """The first run holds the virtual board until told to finish; the second waits its bound
    and fails naming the holder."""
    go = tmp_path / "go"
    inner.makeconftest('pytest_plugins = ["rig.plugin"]')
    inner.makepyfile(
        first=f"""
        import pathlib, time
        from rig.deadline import Deadline
        def test_hold(board):
            print("HOLDING", flush=True)
            deadline = Deadline(60)
            while not pathlib.Path({str(go)!r}).exists() and not deadline.expired:
                time.sleep(0.05)  # the other run is a separate process: a file is the signal
        """,
        second="def test_use(board): pass\n",
    )
    first = subprocess.Popen(
        [sys.executable, "-m", "pytest", "first.py", "-s", "-p", "no:cacheprovider", *args(inner)],
        cwd=inner.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert first.stdout is not None
        for line in first.stdout:
            if "HOLDING" in line:
                break
        second = inner.runpytest_subprocess("second.py", *args(inner, "--rig-lock-timeout=1"), timeout=60)
        second.assert_outcomes(errors=1)
        second.stdout.fnmatch_lines([f"*is in use by pid {first.pid}*pytest run*waited 1*"])
    finally:
        go.touch()
        out, _ = first.communicate(timeout=60)
    assert first.returncode == 0, out


def test_a_new_user_scans_writes_and_runs_the_suite_on_the_usb_board(
    inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Plug in (a virtual board stands in for the USB board, at its pty), `rig scan --write`,
    set the Wi-Fi variables, run the HIL suite: it runs on that board, found by discovery."""
    from rig.cli import main as rig

    plugged = VirtualBoard("plugged-in", tmp_path / "plugged-flash")
    plugged.start()
    try:
        device = plugged.port_url
        inventory = inner.path / "boards.yaml"
        # The stand-in board lives on this machine, so the broker is on loopback for it.
        inventory.write_text(
            (REPO / "boards.yaml").read_text().replace("broker_host: auto", "broker_host: 127.0.0.1")
        )
        inner.makeconftest(fabricated_conftest([(device, "BENCH01")]))
        record = ListPortInfo(device, skip_link_detection=True)
        record.vid, record.pid, record.serial_number = 0x10C4, 0xEA60, "BENCH01"
        record.description = "CP2102 USB to UART Bridge Controller"
        monkeypatch.setattr("rig.discovery.ports.list_serial_ports", lambda: [record])
        assert rig(["scan", "--write", "--inventory", str(inventory)]) == 0
        assert "BENCH01" in inventory.read_text()

        monkeypatch.setenv("RIG_WIFI_SSID", "lab-net")
        monkeypatch.setenv("RIG_WIFI_PASSWORD", "pw-Zx81-secret")
        shutil.copytree(REPO / "tests" / "hil", inner.path / "hil")
        # A pty has no EN line to pull, so the tests that cut the power are left to the virtual
        # transport.
        result = inner.runpytest_subprocess(
            "hil", *args(inner, "-m", "not hard_reset", "-p", "no:cacheprovider"), timeout=300
        )
        outcomes = result.parseoutcomes()
        assert outcomes.get("deselected") == 5 and outcomes.get("passed", 0) >= 10, outcomes
        assert not outcomes.get("failed") and not outcomes.get("errors"), result.stdout.str()[-3000:]
        result.stdout.fnmatch_lines(["rig: board=auto (cp210x*) *"])
        logs = "".join(p.read_text() for p in (inner.path / "artifacts").rglob("*.log"))
        assert '"ev": "wifi"' in logs
        # An SSID given as ${VAR} is a secret like the password: the console hides both.
        assert "lab-net" not in logs + result.stdout.str()
        assert "pw-Zx81-secret" not in logs + result.stdout.str()
        assert plugged.boots > 1, "the suite did not reset the plugged-in board"
    finally:
        plugged.stop()
