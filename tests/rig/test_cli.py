"""The ``rig`` command line: in-process through ``main([...])``, and as ``python -m rig.cli``."""

from __future__ import annotations

import io
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from serial.tools.list_ports_common import ListPortInfo

from rig.board.kinds import kind_of
from rig.board_choice import BUILTIN_VIRTUAL, flash_dir
from rig.broker import Broker
from rig.cli import COMMANDS, main
from rig.discovery import ports as discovery_ports
from rig.inventory import load_inventory
from rig.lock import BoardLock

ROOT = Path(__file__).resolve().parents[2]
STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}"
RIG_VARIABLES = (
    "RIG_BOARD",
    "RIG_BROKER",
    "RIG_BROKER_URL",
    "RIG_FIRMWARE",
    "RIG_INVENTORY",
    "RIG_MICROPYTHON",
    "RIG_DEPS_CACHE",
    "RIG_OFFLINE",
)


def port(
    device: str, vid: int | None = None, pid: int | None = None, serial: str | None = None
) -> ListPortInfo:
    record = ListPortInfo(device, skip_link_detection=True)
    record.vid, record.pid, record.serial_number = vid, pid, serial
    record.location = "1-1.2:1.0" if vid is not None else None
    record.description = "CP2102 USB to UART Bridge Controller" if vid is not None else "n/a"
    return record


CP210X = port("/dev/ttyUSB0", 0x10C4, 0xEA60, "0001")
BUILTIN_UART = port("/dev/ttyS0")


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No settings from the caller's shell, and locks of our own, so that a run never waits
    for (or blocks) a board someone else is using."""
    for name in RIG_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RIG_LOCK_DIR", str(tmp_path / "locks"))


@pytest.fixture
def ports(monkeypatch: pytest.MonkeyPatch) -> list[ListPortInfo]:
    """The serial ports the CLI sees: fill the list in the test (empty: nothing plugged in)."""
    present: list[ListPortInfo] = []
    monkeypatch.setattr(discovery_ports, "list_serial_ports", lambda: list(present))
    return present


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path / "work"


def write_inventory(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "boards.yaml"
    path.write_text(text)
    return path


USB_INVENTORY = """\
boards:
  - name: virtual
    kind: virtual
  - name: bench-absent
    kind: esp32
    match:
      vid: 0x10c4
      pid: 0xea60
      serial_number: "0042"
    tags: [wifi]
  - name: needs-secret
    kind: esp32
    match:
      location: 9-9
    network:
      wifi_ssid: lab
      wifi_password: ${RIG_TEST_CLI_UNSET_PASSWORD}
"""


def rig(
    *args: str, cwd: Path = ROOT, stdin: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "rig.cli", *args],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def no_traceback(text: str) -> None:
    assert "Traceback" not in text, text


# -- help and usage --------------------------------------------------------------------------


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert f"usage: rig {command}" in out
    assert "--inventory" in out and "exit codes" in out


def test_top_level_help_documents_exit_codes_in_a_subprocess() -> None:
    result = rig("--help")
    assert result.returncode == 0
    for command in COMMANDS:
        assert command in result.stdout
    assert re.search(r"^  3 +infrastructure", result.stdout, re.M)
    assert re.search(r"^  130 +interrupted", result.stdout, re.M)


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert main(["deploy", "virtual", "--broker-port", "70000"]) == 2
    assert main(["exec"]) == 2
    err = capsys.readouterr().err
    assert "1..65535" in err


# -- the same mistake, the same exit code, in every command ---------------------------------

# Each command that reads the inventory, with what else it needs to get that far; BOARD where it
# takes one. The firmware folder is the repo's unless the case says otherwise.
MISTAKE_COMMANDS = {
    "deploy": ["deploy"],
    "monitor": ["monitor"],
    "exec": ["exec"],
    "up": ["up"],
    "list": ["list"],
    "scan": ["scan"],
    "broker": ["broker"],
    "gate": ["gate"],
    "deps": ["deps", "lock"],
}
BOARD_COMMANDS = ("deploy", "monitor", "exec", "up")
FIRMWARE_COMMANDS = ("deploy", "up", "gate", "deps")


def _argv(
    command: str, *, board: str | None = None, firmware: Path | None = None, inventory: Path
) -> list[str]:
    argv = [*MISTAKE_COMMANDS[command], "--inventory", str(inventory)]
    if command in FIRMWARE_COMMANDS:
        argv += ["--firmware", str(firmware or ROOT / "firmware")]
    if command in BOARD_COMMANDS and board is not None:
        argv.append(board)
    if command == "exec":
        argv.append("print(1)")
    if command == "gate" and board is not None:
        argv += ["--boards", board]
    return argv


@pytest.mark.parametrize("command", sorted(set(MISTAKE_COMMANDS) - {"deps"}))  # deps reads no inventory
def test_a_bad_inventory_exits_2_in_every_command(
    command: str, tmp_path: Path, workdir: Path, ports: list[ListPortInfo], capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_inventory(tmp_path, "boards:\n  - name: x\n    kind: virtual\n    colour: red\n")
    assert main([*_argv(command, inventory=path), "--workdir", str(workdir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"rig: error: {path}:4: "), err
    no_traceback(err)


@pytest.mark.parametrize("command", [*BOARD_COMMANDS, "gate"])
def test_an_unknown_board_exits_2_in_every_command(
    command: str, tmp_path: Path, workdir: Path, ports: list[ListPortInfo], capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_inventory(tmp_path, USB_INVENTORY)
    assert main([*_argv(command, board="virtul", inventory=path), "--workdir", str(workdir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rig: error: "), err
    assert "virtul" in err and "did you mean 'virtual'?" in err, err
    no_traceback(err)


@pytest.mark.parametrize("command", FIRMWARE_COMMANDS)
def test_a_missing_firmware_folder_exits_2_in_every_command(
    command: str, tmp_path: Path, workdir: Path, ports: list[ListPortInfo], capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_inventory(tmp_path, USB_INVENTORY)
    missing = tmp_path / "no-such-firmware"
    argv = _argv(command, board="virtual", firmware=missing, inventory=path)
    assert main([*argv, "--workdir", str(workdir)]) == 2
    err = capsys.readouterr().err
    assert f"{missing} is not a directory" in err, err
    no_traceback(err)


@pytest.mark.parametrize("command", FIRMWARE_COMMANDS)
def test_a_missing_firmware_folder_from_the_variable_names_the_variable(
    command: str,
    tmp_path: Path,
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("RIG_FIRMWARE", str(tmp_path / "gone"))
    argv = [arg for arg in _argv(command, board="virtual", inventory=tmp_path / "none.yaml")]
    at = argv.index("--firmware")
    del argv[at : at + 2]
    assert main([*argv, "--workdir", str(workdir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"rig: error: $RIG_FIRMWARE: firmware: {tmp_path / 'gone'} is not a directory"), err


def test_a_bad_variable_exits_2_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RIG_LOCK_TIMEOUT", "soon")
    assert main(["list"]) == 2
    assert capsys.readouterr().err.startswith(
        "rig: error: $RIG_LOCK_TIMEOUT: lock-timeout: expected a number of seconds, got 'soon'"
    )
    monkeypatch.setenv("RIG_LOCK_TIMEOUT", "5")
    monkeypatch.setenv("RIG_OFFLINE", "maybe")
    assert main(["deps", "lock"]) == 2
    assert "$RIG_OFFLINE: offline: expected 1 or 0, got 'maybe'" in capsys.readouterr().err


def test_cli_defaults_come_from_the_settings_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """One default per setting: rig's own flags take theirs from the table pytest reads."""
    from rig.bench_page.server import MAX_STREAMS
    from rig.cli import build_parser
    from rig.cli.common import embedded_broker
    from rig.settings import REFERENCE_LOOP_PERIOD, option

    def page_streams_default() -> int:
        return int(build_parser().parse_args(["up"]).page_streams)

    args = build_parser().parse_args(["deploy"])
    assert args.lock_timeout == float(option("lock-timeout").default or "")
    assert args.board == option("board").default == "auto"
    assert args.firmware == Path(option("firmware").default or "")
    assert build_parser().parse_args(["gate"]).broker == option("broker").default
    up = build_parser().parse_args(["up"])
    assert up.timeout == float(option("timeout").default or "") == 10.0, "rig up waits as a test run does"
    assert up.loop_period == args.loop_period == REFERENCE_LOOP_PERIOD, "rig up and deploy: the tutorial's"
    assert up.broker == build_parser().parse_args(["broker"]).broker == option("broker").default
    assert page_streams_default() == MAX_STREAMS, "rig up's and rig page's cap is the server's"
    monkeypatch.setenv("RIG_TIMEOUT", "12")
    assert build_parser().parse_args(["up"]).timeout == 12.0
    monkeypatch.setenv("RIG_BROKER", "amqtt")
    assert build_parser().parse_args(["up"]).broker == build_parser().parse_args(["broker"]).broker == "amqtt"
    assert build_parser().parse_args(["up", "--kind", "mosquitto"]).broker == "mosquitto", "the old name"
    monkeypatch.setenv("RIG_BROKER", "external")
    assert embedded_broker(build_parser().parse_args(["up"]).broker) == "auto", "rig up runs its own broker"
    monkeypatch.delenv("RIG_BROKER")
    monkeypatch.setenv("RIG_LOCK_TIMEOUT", "7")
    monkeypatch.setenv("RIG_BOARD", "bench-2")
    args = build_parser().parse_args(["exec", "print(1)"])
    assert (args.lock_timeout, args.board, args.code) == (7.0, "bench-2", "print(1)")
    assert build_parser().parse_args(["exec", "--lock-timeout", "2", "virtual", "x"]).lock_timeout == 2.0


def test_deploy_takes_the_board_automatically_as_up_does(
    tmp_path: Path, workdir: Path, ports: list[ListPortInfo], capsys: pytest.CaptureFixture[str]
) -> None:
    """Nothing named: the one USB board of the inventory plugged in (here, found on a
    fabricated port record that is absent as a device, so the deploy stops there), else virtual."""
    path = write_inventory(tmp_path, USB_INVENTORY.replace('"0042"', '"0001"'))
    ports.append(CP210X)
    assert main(["deploy", "--inventory", str(path), "--workdir", str(workdir)]) == 3
    err = capsys.readouterr().err
    assert "bench-absent" in err and "/dev/ttyUSB0" in err, err


def test_deploy_help_says_the_firmware_keeps_trying(capsys: pytest.CaptureFixture[str]) -> None:
    """firmware/connect_retry.py never gives up: the help must not say it does."""
    assert main(["deploy", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "the firmware gives up" not in out
    assert "never gives up" in out and "every 2 s" in out


# -- list ------------------------------------------------------------------------------------


def test_list_committed_inventory_in_a_subprocess(workdir: Path) -> None:
    result = rig("list", "--workdir", str(workdir))
    assert result.returncode == 0, result.stderr
    assert re.search(r"^virtual +virtual +virtual .* available$", result.stdout, re.M), result.stdout


def test_list_shows_absent_board_and_missing_variable(
    tmp_path: Path, workdir: Path, ports: list[ListPortInfo], capsys: pytest.CaptureFixture[str]
) -> None:
    monkey_unset = "RIG_TEST_CLI_UNSET_PASSWORD"
    assert monkey_unset not in os.environ
    path = write_inventory(tmp_path, USB_INVENTORY)
    assert main(["list", "--inventory", str(path), "--workdir", str(workdir)]) == 0
    lines = capsys.readouterr().out.splitlines()
    row = {line.split()[0]: line for line in lines[1:]}
    assert row["virtual"].endswith("available")
    assert "vid:pid 10c4:ea60, serial_number 0042" in row["bench-absent"]
    assert "wifi" in row["bench-absent"] and row["bench-absent"].endswith("absent")
    assert row["needs-secret"].endswith(f"absent; missing env {monkey_unset}")


def test_list_shows_present_port_and_lock_holder(
    tmp_path: Path, workdir: Path, ports: list[ListPortInfo], capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_inventory(tmp_path, USB_INVENTORY.replace('"0042"', '"0001"'))
    ports.append(CP210X)
    virtual_lock = BoardLock(
        kind_of(BUILTIN_VIRTUAL).lock_identity(BUILTIN_VIRTUAL, workdir), purpose="a test"
    )
    with virtual_lock:
        assert main(["list", "--inventory", str(path), "--workdir", str(workdir)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^bench-absent .* present \(/dev/ttyUSB0\)$", out, re.M), out
    assert re.search(rf"^virtual .* locked by pid {os.getpid()} .*purpose a test\)$", out, re.M), out


def test_bad_inventory_exits_2_naming_file_line_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_inventory(tmp_path, "boards:\n  - name: x\n    kind: virtual\n    colour: red\n")
    assert main(["list", "--inventory", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"rig: error: {path}:4: ")
    assert "colour" in err
    no_traceback(err)


def test_bad_inventory_in_a_subprocess(tmp_path: Path) -> None:
    write_inventory(tmp_path, "boards:\n  - name: x\n    kind: virtual\n    colour: red\n")
    result = rig("list", cwd=tmp_path)
    assert result.returncode == 2
    assert re.match(r"rig: error: .*boards\.yaml:4: .*colour", result.stderr), result.stderr
    no_traceback(result.stderr)


# -- scan ------------------------------------------------------------------------------------


def test_scan_without_ports(
    tmp_path: Path, ports: list[ListPortInfo], capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_inventory(tmp_path, USB_INVENTORY)
    assert main(["scan", "--inventory", str(path)]) == 0
    assert capsys.readouterr().out == "no USB serial devices found\n"
    ports.append(BUILTIN_UART)
    assert main(["scan", "--inventory", str(path)]) == 0
    assert "1 other serial port(s) without USB ids" in capsys.readouterr().out


def test_scan_prints_a_ready_entry_for_an_unknown_board(
    tmp_path: Path, ports: list[ListPortInfo], capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_inventory(tmp_path, USB_INVENTORY)
    ports.extend([BUILTIN_UART, CP210X])
    assert main(["scan", "--inventory", str(path)]) == 0
    out = capsys.readouterr().out
    assert "/dev/ttyUSB0: Silicon Labs CP210x bridge (likely ESP32), serial 0001  [USB-serial bridge]" in out
    entry = yaml.safe_load(out.split("rig scan --write):\n", 1)[1])
    assert entry == [
        {
            "name": "cp210x-0001",
            "kind": "esp32",
            "match": {"vid": "0x10c4", "pid": "0xea60", "serial_number": "0001"},
            "tags": ["wifi"],
        }
    ]
    assert path.read_text() == USB_INVENTORY  # without --write nothing is written


def test_scan_names_the_matching_board(
    tmp_path: Path, ports: list[ListPortInfo], capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_inventory(tmp_path, USB_INVENTORY.replace('"0042"', '"0001"'))
    ports.append(CP210X)
    assert main(["scan", "--inventory", str(path)]) == 0
    out = capsys.readouterr().out
    assert "already in the inventory as bench-absent" in out
    assert "every device is already in the inventory" in out


def test_scan_write_appends_to_the_inventory(
    tmp_path: Path, ports: list[ListPortInfo], capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_inventory(tmp_path, USB_INVENTORY)
    ports.append(CP210X)
    assert main(["scan", "--write", "--inventory", str(path)]) == 0
    assert f"added to {path}: cp210x-0001" in capsys.readouterr().out
    inventory = load_inventory(path, env={})
    assert inventory.names() == ["virtual", "bench-absent", "needs-secret", "cp210x-0001"]
    assert inventory.get("cp210x-0001").match.serial_number == "0001"
    assert main(["scan", "--write", "--inventory", str(path)]) == 0
    assert "every device is already in the inventory" in capsys.readouterr().out


# -- board commands: errors ------------------------------------------------------------------


def test_deploy_unknown_board_exits_2_naming_known_boards(
    tmp_path: Path, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_inventory(tmp_path, USB_INVENTORY)
    assert main(["deploy", "nosuchboard", "--inventory", str(path), "--workdir", str(workdir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rig: error: ")
    assert "no board named 'nosuchboard'" in err and "virtual, bench-absent, needs-secret" in err
    no_traceback(err)


def test_absent_usb_board_exits_3_with_ports_seen(
    tmp_path: Path, workdir: Path, ports: list[ListPortInfo], capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_inventory(tmp_path, USB_INVENTORY)
    ports.append(BUILTIN_UART)
    assert (
        main(["exec", "bench-absent", "print(1)", "--inventory", str(path), "--workdir", str(workdir)]) == 3
    )
    err = capsys.readouterr().err
    assert err.startswith("rig: error: board bench-absent (")
    assert "no serial port matches vid:pid 10c4:ea60, serial_number 0042" in err
    assert "serial ports seen:\n  /dev/ttyS0" in err
    no_traceback(err)


def test_missing_secret_exits_2(tmp_path: Path, workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_inventory(tmp_path, USB_INVENTORY)
    assert main(["deploy", "needs-secret", "--inventory", str(path), "--workdir", str(workdir)]) == 2
    assert "RIG_TEST_CLI_UNSET_PASSWORD is not set" in capsys.readouterr().err


def test_busy_board_exits_3_naming_the_holder(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lock = BoardLock(
        kind_of(BUILTIN_VIRTUAL).lock_identity(BUILTIN_VIRTUAL, workdir),
        purpose="someone else",
    )
    with lock:
        code = main(["exec", "virtual", "print(1)", "--workdir", str(workdir), "--lock-timeout", "0"])
    assert code == 3
    err = capsys.readouterr().err
    assert err.startswith("rig: error: board virtual-virtual-")
    assert f"in use by pid {os.getpid()}" in err and "purpose someone else" in err


# -- the virtual board -----------------------------------------------------------------------


def test_deploy_then_exec_on_the_virtual_board(
    workdir: Path, private_broker: Broker, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "deploy",
            "virtual",
            "--workdir",
            str(workdir),
            "--firmware",
            str(ROOT / "firmware"),
            "--broker-host",
            private_broker.host,
            "--broker-port",
            str(private_broker.port),
            "--loop-period",
            "0.2",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "warning" not in err
    assert (
        f"broker {private_broker.host}:{private_broker.port}, client id rig-virtual, topic prefix rig/virtual"
        in out
    )
    # Progress, one line per file written; the firmware is several modules, main.py among them.
    assert re.search(r"^\[1/\d+\] \S+\.py$", out, re.M), out
    assert re.search(r"^\[\d+/\d+\] main\.py$", out, re.M), out
    assert re.search(r"^deployed \d+ file\(s\)", out, re.M)
    assert (flash_dir(workdir, BUILTIN_VIRTUAL) / "config.json").exists()

    result = rig("exec", "virtual", "print(6*7)", "--workdir", str(workdir))
    assert (result.returncode, result.stdout) == (0, "42\n"), result.stderr
    # The firmware is on the board's flash: the config the deploy wrote is there for exec too.
    assert main(["exec", "virtual", "print(open('config.json').read())", "--workdir", str(workdir)]) == 0
    assert '"topic_prefix": "rig/virtual"' in capsys.readouterr().out


def test_deploy_warns_when_no_broker_listens(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as probe:  # a port nothing listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    monkeypatch.setenv("RIG_BROKER_URL", f"127.0.0.1:{free}")
    argv = ["deploy", "virtual", "--workdir", str(workdir), "--firmware", str(ROOT / "firmware")]
    assert main([*argv, "--client-id", "cli-test"]) == 0
    out, err = capsys.readouterr()
    assert f"broker 127.0.0.1:{free}, client id cli-test, topic prefix rig/virtual" in out
    assert err.startswith(f"rig: warning: nothing accepts connections on 127.0.0.1:{free}")


def test_bad_broker_url_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RIG_BROKER_URL", "nocolon")
    assert main(["deploy", "virtual"]) == 2
    assert capsys.readouterr().err.startswith("rig: error: $RIG_BROKER_URL: external: 'nocolon'")


def test_exec_board_exception_exits_1_with_traceback(workdir: Path) -> None:
    result = rig("exec", "virtual", "print('before')\n1/0", "--workdir", str(workdir))
    assert result.returncode == 1
    assert result.stdout == "before\n"
    assert result.stderr.startswith("Traceback (most recent call last):\n")
    assert result.stderr.rstrip().endswith("ZeroDivisionError: divide by zero")


def test_exec_reads_code_from_stdin_and_resets(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("for i in range(3):\n    print(i)\n"))
    assert main(["exec", "virtual", "-", "--reset", "--workdir", str(workdir)]) == 0
    assert capsys.readouterr().out == "0\n1\n2\n"
    log = (workdir / "serial-virtual.log").read_text()
    assert "soft reboot" in log


def test_exec_timeout_interrupts_the_code(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["exec", "virtual", "import time\ntime.sleep(30)", "--timeout", "1", "--workdir", str(workdir)]
    )
    assert code == 1
    assert "still running after 1s" in capsys.readouterr().err


def test_monitor_forwards_piped_input_in_a_subprocess(workdir: Path) -> None:
    result = rig("monitor", "virtual", "--workdir", str(workdir), stdin='print("hi")\n')
    assert result.returncode == 0, result.stderr
    assert re.search(rf"^{STAMP} hi$", result.stdout, re.M), result.stdout


def test_monitor_in_process(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stdin = io.TextIOWrapper(io.BytesIO(b'print("a" + "b")\nprint(1 + 2)\n'))
    monkeypatch.setattr(sys, "stdin", stdin)
    assert main(["monitor", "virtual", "--workdir", str(workdir)]) == 0
    out = capsys.readouterr().out
    assert re.search(rf"^{STAMP} ab$", out, re.M), out
    assert re.search(rf"^{STAMP} 3$", out, re.M), out


# -- broker ----------------------------------------------------------------------------------


def test_broker_runs_until_sigterm(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "rig.cli", "broker", "--workdir", str(tmp_path)],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        # Its announcement, up to the log's line (which broker it is comes first; what else it
        # says is checked in test_cli_broker.py).
        lines: list[str] = []
        while len(lines) < 12 and not (lines and "log: " in lines[-1]):
            lines.append(process.stdout.readline())
        assert any(re.fullmatch(r"mqtt://127\.0\.0\.1:\d+\n", line) for line in lines), lines
        assert any(re.fullmatch(r"ws://127\.0\.0\.1:\d+/mqtt\n", line) for line in lines), lines
        # Locked down by default: the file with its accounts comes before the log.
        assert any(line.startswith("credentials: ") for line in lines[:-1]), lines
        assert "log: " in lines[-1] and str(tmp_path) in lines[-1], lines
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
