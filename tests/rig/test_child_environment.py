"""The processes the rig starts see only the part of its environment they need (issue 17).

The host's environment holds ``RIG_BROKER_PASSWORD``, ``RIG_WIFI_PASSWORD`` and, under CI, the
service's tokens. A firmware or a broker that inherits it shows them in ``/proc/<pid>/environ``
to every process of the same user, and in whatever it dumps on a crash. Judged on the real
processes' ``/proc/<pid>/environ``, not on the arguments the rig meant to pass.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rig.board import VirtualBoard
from rig.broker import make_broker
from rig.broker.amqtt import amqtt_available
from rig.broker.mosquitto import find_mosquitto
from rig.processes import PYTHON_ENV, SYSTEM_ENV, ChildProcess, child_environment

SECRETS = {
    "RIG_BROKER_PASSWORD": "broker-pw-6f1d3a",
    "RIG_WIFI_PASSWORD": "wifi-pw-90c2be",
    "GITHUB_TOKEN": "ghs_fakeCiToken0123456789",
}


@pytest.fixture
def secrets_in_environment(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    return SECRETS


def environ_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(entry.split("=", 1) for entry in raw.decode(errors="replace").split("\0") if "=" in entry)


def assert_holds_no_secret(pid: int, what: str) -> dict[str, str]:
    env = environ_of(pid)
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    leaked = [name for name, value in SECRETS.items() if value.encode() in raw]
    assert not leaked, f"{what} (pid {pid}) inherited {leaked}; its environment: {sorted(env)}"
    return env


def test_a_child_environment_keeps_only_the_groups_asked_for() -> None:
    host = {
        "PATH": "/usr/bin",
        "HOME": "/root",
        "LC_ALL": "C.UTF-8",
        "PYTHONPATH": "/src",
        "MICROPYPATH": "/lib",
        **SECRETS,
    }
    assert child_environment(SYSTEM_ENV, host=host) == {
        "PATH": "/usr/bin",
        "HOME": "/root",
        "LC_ALL": "C.UTF-8",
    }
    python = child_environment(SYSTEM_ENV, PYTHON_ENV, ("MICROPYPATH",), add={"RIG_FLASH": "/f"}, host=host)
    assert set(python) == {"PATH", "HOME", "LC_ALL", "PYTHONPATH", "MICROPYPATH", "RIG_FLASH"}


@pytest.mark.integration
def test_a_process_started_without_an_environment_gets_no_secret(
    secrets_in_environment: dict[str, str], tmp_path: Path
) -> None:
    child = ChildProcess.spawn(["sleep", "30"], name="sleep")
    try:
        env = assert_holds_no_secret(child.pid, "a child started with the default environment")
        assert env.get("PATH"), "a child must still find programs"
    finally:
        child.stop()


@pytest.mark.integration
def test_the_virtual_board_and_its_firmware_get_no_secret(
    secrets_in_environment: dict[str, str], flash: Path
) -> None:
    board = VirtualBoard("env", flash)
    board.start()
    try:
        assert board.supervisor_pid is not None and board.firmware_pid is not None
        assert_holds_no_secret(board.supervisor_pid, "the virtual board's supervisor")
        firmware = assert_holds_no_secret(board.firmware_pid, "MicroPython (the virtual board's firmware)")
        # What it does need, it has: its flash and whether to run main.py.
        assert firmware["RIG_FLASH"] == str(flash.resolve()) and "RIG_RUN_MAIN" in firmware
    finally:
        board.stop()


def _kinds() -> Iterator[object]:
    yield pytest.param(
        "mosquitto", marks=pytest.mark.skipif(find_mosquitto() is None, reason="mosquitto is not installed")
    )
    yield pytest.param(
        "amqtt", marks=pytest.mark.skipif(not amqtt_available(), reason="amqtt is not installed")
    )


@pytest.mark.integration
@pytest.mark.parametrize("kind", list(_kinds()))
def test_the_brokers_get_no_secret(secrets_in_environment: dict[str, str], tmp_path: Path, kind: str) -> None:
    broker = make_broker(kind, tmp_path / kind)
    broker.start()
    try:
        assert broker.pid is not None
        env = assert_holds_no_secret(broker.pid, f"the {kind} broker")
        assert env.get("PATH")
    finally:
        broker.stop()
