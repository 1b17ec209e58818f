"""The testbed (``rig.testbed``): a broker plus a board, wired once, for the plugin and every command.

Real parts: the embedded broker (mosquitto when installed, and amqtt), the virtual board running
the firmware, a paho client with the host's account. What is checked is what the broker and the
processes show: the board's echo seen by a client, the processes gone by PID after close.
"""

from __future__ import annotations

import json
import shlex
import stat
from pathlib import Path

import pytest

from rig.board_choice import BUILTIN_VIRTUAL
from rig.broker.access import HOST, board_role
from rig.broker.amqtt import amqtt_available
from rig.broker.credentials_file import subscribe_command
from rig.broker.mosquitto import find_mosquitto
from rig.discovery import BoardNotPresent
from rig.errors import RigError
from rig.host_client import HostClient
from rig.inventory import load_inventory
from rig.processes import is_running
from rig.settings import RigSettings
from rig.testbed import Naming, Testbed, broker_identity, settings_from

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 20.0


def settings(tmp_path: Path, **given: object) -> RigSettings:
    return settings_from({"firmware": REPO / "firmware", "timeout": TIMEOUT, **given}, tmp_path)


@pytest.mark.fast
def test_a_run_names_topics_and_clients_by_its_id_a_bench_by_the_board_alone() -> None:
    run, bench = Naming("ab12cd"), Naming()
    assert (run.topic_prefix("virtual"), run.client_id("virtual")) == (
        "rig/virtual/ab12cd",
        "rig-virtual-ab12cd",
    )
    assert (bench.topic_prefix("virtual"), bench.client_id("virtual")) == ("rig/virtual", "rig-virtual")


@pytest.mark.fast
def test_a_commands_settings_are_read_through_the_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RIG_FIRMWARE_MODE", "responsive")
    made = settings_from({"tls": True, "loop-period": 0.5, "firmware": Path("fw"), "timeout": None}, tmp_path)
    assert made.tls and made.loop_period == 0.5 and made.firmware == tmp_path / "fw"
    # What the command was not given comes from the environment, then the table's default.
    assert made.firmware_mode == "responsive"
    assert made.timeout == float(settings_from({}, tmp_path).timeout)
    with pytest.raises(ValueError, match="not in the settings table: kind"):
        settings_from({"kind": "amqtt"}, tmp_path)


@pytest.mark.integration
def test_the_testbed_runs_the_firmware_and_close_stops_everything_by_pid(tmp_path: Path) -> None:
    workdir = tmp_path / "bed"
    testbed = Testbed(
        settings(tmp_path, tls=True, **{"loop-period": 0.2}),
        workdir,
        board=BUILTIN_VIRTUAL,
        purpose="test_testbed",
        naming=Naming(),
        own_network=False,
    )
    with testbed:
        board = testbed.board()
        broker = testbed.broker()
        assert broker.access is not None and broker.tls is not None
        config = testbed.config()
        assert config.topic_prefix == "rig/virtual" and config.client_id == "rig-virtual"
        assert config.broker_user == broker.access.login(board_role("virtual")).user
        assert config.tls_ca == broker.tls.ca_pem, "the board is not given the run's CA"
        assert testbed.run_firmware(config) is board

        # The broker is the witness: a client with the host's account sees the board echo.
        host = HostClient(broker.host, broker.port, "test-testbed-host", login=broker.login(HOST))
        host.connect(TIMEOUT)
        try:
            host.subscribe(config.echo_topic)
            host.publish(config.echo_topic, b"testbed 11 22")
            host.wait_count(config.echo_topic, b"testbed 11 22", 2, TIMEOUT)
        finally:
            host.close()

        credentials = testbed.write_credentials()
        assert credentials is not None and stat.S_IMODE(credentials.stat().st_mode) == 0o600
        pids = json.loads((workdir / "pids.json").read_text())
        assert pids["broker"] == [broker.pid] and pids["board"], pids
        started = [pid for role in pids.values() for pid in role]  # a restarted board's too
        assert all(is_running(pid) for role in testbed.process_ids().values() for pid in role)
        secrets = testbed.secrets()
        assert config.broker_password in secrets.values() and "tls_server_key" in secrets
        tls_folder = broker.tls.key_path.parent
    assert [pid for pid in started if is_running(pid)] == [], "a process outlived the testbed"
    assert not credentials.exists(), "the credentials outlived the testbed"
    assert not tls_folder.exists(), "the TLS private keys outlived the testbed"
    testbed.close()  # idempotent
    with pytest.raises(RigError, match="closed"):
        testbed.broker()


@pytest.mark.integration
@pytest.mark.parametrize("kind", ["mosquitto", "amqtt"])
def test_a_broker_only_testbed_has_an_account_per_board_and_says_which_broker_runs(
    tmp_path: Path, kind: str
) -> None:
    """``rig broker``'s shape: no board to run, an account for each board of the bench."""
    if kind == "mosquitto" and find_mosquitto() is None:
        pytest.fail("mosquitto is not installed (the rig's default broker; see .ci/run)")
    if kind == "amqtt" and not amqtt_available():
        pytest.fail("amqtt is not importable (a dependency of the test environment)")
    inventory = tmp_path / "boards.yaml"
    inventory.write_text("boards:\n  - name: vb-1\n    kind: virtual\n  - name: vb-2\n    kind: virtual\n")
    boards = load_inventory(inventory).boards
    with Testbed(
        settings(tmp_path, broker=kind),
        tmp_path / "bed",
        board=None,
        purpose="test_testbed",
        naming=Naming(),
        own_network=False,
        accounts_for=boards,
    ) as testbed:
        broker = testbed.broker()
        assert broker.access is not None
        topics = {a.role: a.patterns for a in broker.access.accounts}
        assert topics[board_role("vb-1")] == ("rig/vb-1/#",) and topics[HOST] == ("rig/vb-1/#", "rig/vb-2/#")
        identity = broker_identity(broker)
        assert identity.startswith(f"{kind} ") and identity.split()[1][0].isdigit(), identity
        with pytest.raises(RigError, match="no board"):
            testbed.board()


@pytest.mark.integration
def test_an_open_testbed_has_no_accounts_and_writes_no_credentials(tmp_path: Path) -> None:
    with Testbed(
        settings(tmp_path),
        tmp_path / "bed",
        board=None,
        purpose="test_testbed",
        naming=Naming(),
        own_network=False,
        locked_down=False,
    ) as testbed:
        assert testbed.broker().access is None
        assert testbed.write_credentials() is None


@pytest.mark.fast
def test_a_board_that_cannot_be_had_gives_every_caller_the_same_error_and_starts_no_broker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("rig.discovery.ports.list_serial_ports", lambda: [])
    inventory = tmp_path / "boards.yaml"
    inventory.write_text(
        "boards:\n  - name: esp\n    kind: esp32\n"
        "    match: {vid: 0x10c4, pid: 0xea60, serial_number: GONE}\n"
    )
    spec = load_inventory(inventory).select("esp")
    with Testbed(
        settings(tmp_path),
        tmp_path / "bed",
        board=spec,
        purpose="test_testbed",
        naming=Naming(),
        own_network=False,
    ) as testbed:
        with pytest.raises(BoardNotPresent) as first:
            testbed.board()
        with pytest.raises(BoardNotPresent) as second:
            testbed.board()
        assert second.value is first.value
        assert not testbed.broker_started


@pytest.mark.fast
def test_the_subscribe_command_reads_the_password_when_it_runs_and_never_shows_it(tmp_path: Path) -> None:
    path = tmp_path / "it's here" / "broker.json"
    path.parent.mkdir()
    accounts = {"host": {"user": "rig-host", "password": "s3cr3t-value", "topics": ["rig/virtual/#"]}}
    path.write_text(json.dumps({"mqtt": "mqtt://127.0.0.1:1884", "accounts": accounts}))
    command = subscribe_command(path, HOST, ["rig/virtual/#", "foo topic"])
    assert "s3cr3t-value" not in command
    # The shell's own reading of the line, as mosquitto_sub gets it (a quote in the path too).
    words = shlex.split(command.replace('"$(', "").replace(')"', ""))
    assert words[:7] == ["mosquitto_sub", "-h", "127.0.0.1", "-p", "1884", "-u", "rig-host"]
    reader = words[words.index("-c") + 1]
    assert words[words.index("-c") + 2] == str(path) and '"host"' in reader, words
    assert words[-5:] == ["-t", "rig/virtual/#", "-t", "foo topic", "-v"]
    anonymous = subscribe_command(None, HOST, ["foo_topic"], address=("10.0.0.2", 1883))
    assert anonymous == "mosquitto_sub -h 10.0.0.2 -p 1883 -t foo_topic -v"
