"""Every wait on the board ends at the rig's deadline, however much the board prints.

A firmware that floods its console used to hang the whole suite: mpremote's ``read_until``
restarts its timeout with every byte, so the redeploy before a test waited for ever. These run
a flooding firmware on the virtual board (the unix port prints about 10 MB/s into its pty) and
check that each wait ends within its bound, that the rig escalates (Ctrl-C, then a hard reset,
then broken) and that the error says what was awaited, a short tail of what was seen, and where
the whole log is.

The bounds asserted are the rig's timeout plus a margin for a loaded machine. Measured on 2
cores with four other test runs: a flood that ignores Ctrl-C is given up on 4.0-4.2 s after the
start (two 2 s rungs and a power cycle), asserted below 12 s; a flood that Ctrl-C stops is
redeployed, hello included, in 0.1-0.2 s.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from mpremote.transport_serial import SerialTransport

from rig.board import Board
from rig.board.board import BoardState, BoardUnresponsive
from rig.broker import Broker
from rig.deadline import Deadline
from rig.deploy.step import deploy_firmware
from rig.deploy.sync import DeployReport
from rig.errors import BoardUnreachable, WaitTimeout
from rig.firmware_config import FirmwareConfig
from rig.serialio import port as port_module
from rig.serialio.port import BoardPort
from rig.serialio.tap import Tap, TapExpired, TapOverflow
from rig.strategy import FirmwareStrategy
from tests.rig.fake_pty import FakeBoardEnd

REPO = Path(__file__).resolve().parents[2]
# The strategy's timeout: each rung of the escalation and the hello wait.
BOUND = 2.0
# A loaded 2-core machine: what a wait may overshoot its bound by, at most.
SLACK = 8.0
# An error message is a tail, not a flood.
MESSAGE_LIMIT = 4000

FLOOD = 'while True:\n    print("x" * 100)\n'
# Floods and swallows Ctrl-C, as a retry loop with a bare ``except:`` does.
DEAF_FLOOD = """\
while True:
    try:
        while True:
            print("x" * 100)
    except KeyboardInterrupt:
        pass
"""
# Floods deaf to Ctrl-C on the first boot only: after a hard reset the REPL answers.
DEAF_ONCE = """\
import os
if "flooded" not in os.listdir("/"):
    open("flooded", "w").close()
""" + "\n".join("    " + line for line in DEAF_FLOOD.splitlines())


def config(broker: Broker, loop_period: float = 0.1) -> FirmwareConfig:
    return FirmwareConfig(
        broker_host=broker.host,
        broker_port=broker.port,
        client_id=f"flood-{os.getpid()}",
        topic_prefix=f"rig/flood/{os.getpid()}",
        loop_period=loop_period,
    )


class Deploy:
    """The real deploy of one firmware tree."""

    def __init__(self, tree: Path) -> None:
        self.tree = tree

    def __call__(self, board: Board, config: FirmwareConfig) -> DeployReport:
        return deploy_firmware(board, self.tree, config)


def flooding_tree(tmp_path: Path, main: str) -> Path:
    """firmware/ with main.py replaced by ``main``."""
    tree = tmp_path / "flood-firmware"
    shutil.copytree(REPO / "firmware", tree, ignore=shutil.ignore_patterns("__pycache__"))
    (tree / "main.py").write_text(main)
    return tree


def start_flooding(flash: Path, board: Board, main: str) -> None:
    """Boot ``main`` from the flash, as a board an earlier run left, and see it flood."""
    (flash / "main.py").write_text(main)
    board.soft_reset(timeout=BOUND + SLACK)
    flooding = board.capture.wait(
        lambda ln: ln.index > 1000 and ln.text.startswith("xxx"), 0, Deadline(BOUND + SLACK), False
    )
    assert flooding is not None, board.last_seen(5)


def assert_bounded_report(error: BaseException, board: Board) -> None:
    text = str(error)
    assert len(text) < MESSAGE_LIMIT, f"the error carries {len(text)} characters of flood"
    assert f"full log: {board.capture.session_log}" in text


def test_the_tap_ends_mpremote_reads_that_every_byte_would_extend(flash: Path, virtual_board: Board) -> None:
    """mpremote's read_until on a flood never checks its timeouts; the tap's deadline ends it."""
    start_flooding(flash, virtual_board, FLOOD)
    assert virtual_board.port is not None
    # Room for all the flood mpremote cannot read in time, so that the deadline is what ends it.
    tap = Tap(
        virtual_board.port, max_block=1.0, deadline=Deadline(BOUND), awaited="a marker", limit=256 * 1024**2
    )
    transport = SerialTransport(tap.url)
    transport.is_pty = True
    started = time.monotonic()
    try:
        with pytest.raises(TapExpired, match=r"a marker not done within 2.0s; the board sent \d+ bytes"):
            transport.read_until(1, b"never printed", timeout=0.5, timeout_overall=0.5)
        assert time.monotonic() - started < BOUND + SLACK
    finally:
        transport.close()
        tap.close()
        virtual_board.interrupt()


def test_an_unread_tap_keeps_a_bounded_buffer(flash: Path, virtual_board: Board) -> None:
    (flash / "main.py").write_text(FLOOD)
    assert virtual_board.port is not None
    tap = Tap(virtual_board.port, limit=64 * 1024)
    try:
        virtual_board.soft_reset(timeout=BOUND + SLACK)
        virtual_board.capture.wait(
            lambda ln: ln.index > 2000, 0, Deadline(BOUND + SLACK), include_partial=False
        )
        with pytest.raises(TapOverflow, match="it floods its console"):
            tap.read(1, 1.0)
        assert len(tap._buffer) <= 64 * 1024  # what the tap holds, however much the board sent
    finally:
        tap.close()
        virtual_board.interrupt()


def test_a_board_flooding_from_boot_is_reached_with_ctrl_c_and_redeployed(
    flash: Path, virtual_board: Board, private_broker: Broker, tmp_path: Path
) -> None:
    """Left flooding by an earlier run: one Ctrl-C stops it, no reset needed."""
    start_flooding(flash, virtual_board, FLOOD)
    before = virtual_board.hard_resets
    strategy = FirmwareStrategy(virtual_board, Deploy(REPO / "firmware"), timeout=BOUND, record_dir=tmp_path)
    started = time.monotonic()
    strategy.transition(BoardState.RUNNING, config(private_broker))
    # The deploy, its soft reset and the hello: the board stopped flooding at the Ctrl-C.
    assert time.monotonic() - started < 3 * BOUND + SLACK
    assert virtual_board.state is BoardState.RUNNING
    assert virtual_board.hard_resets == before, "Ctrl-C was enough; the board was not reset"
    assert strategy.last_deploy is not None and strategy.last_deploy.written


def test_a_flood_deaf_to_ctrl_c_is_reset_then_the_board_is_broken(
    flash: Path, virtual_board: Board, private_broker: Broker, tmp_path: Path
) -> None:
    start_flooding(flash, virtual_board, DEAF_FLOOD)
    before = virtual_board.hard_resets
    strategy = FirmwareStrategy(virtual_board, Deploy(REPO / "firmware"), timeout=BOUND, record_dir=tmp_path)
    started = time.monotonic()
    with pytest.raises(BoardUnresponsive) as caught:
        strategy.transition(BoardState.RUNNING, config(private_broker))
    took = time.monotonic() - started
    assert took < 2 * BOUND + SLACK, f"the escalation took {took:.1f}s"
    text = str(caught.value)
    assert "no raw REPL even after a hard reset" in text
    assert text.count("it floods its console") == 2, text
    assert "hard reset: done" in text
    assert_bounded_report(caught.value, virtual_board)
    assert virtual_board.hard_resets == before + 1, "the rig did not try a hard reset"
    assert virtual_board.state is BoardState.BROKEN
    started = time.monotonic()
    with pytest.raises(BoardUnreachable, match=r"is broken: .*no raw REPL even after a hard reset"):
        strategy.transition(BoardState.RUNNING, config(private_broker))
    assert time.monotonic() - started < 0.5, "a broken board is not tried again"


def test_a_flood_deaf_until_reset_is_recovered_by_the_hard_reset(flash: Path, virtual_board: Board) -> None:
    start_flooding(flash, virtual_board, DEAF_ONCE)
    before = virtual_board.hard_resets
    started = time.monotonic()
    with virtual_board.repl(timeout=BOUND) as repl:
        assert repl.eval("6 * 7") == 42
    assert time.monotonic() - started < 2 * BOUND + SLACK
    assert virtual_board.hard_resets == before + 1


def test_a_deployed_flood_fails_its_hello_in_time_then_is_redeployed(
    virtual_board: Board, private_broker: Broker, tmp_path: Path
) -> None:
    """A firmware tree that floods from boot: the deploy lands (the board was quiet), the
    hello never comes (a firmware failure, in time, with a short tail); the next deploy reaches
    the flooding board with Ctrl-C."""
    flooding = FirmwareStrategy(
        virtual_board, Deploy(flooding_tree(tmp_path, FLOOD)), timeout=BOUND, record_dir=tmp_path
    )
    started = time.monotonic()
    with pytest.raises(WaitTimeout, match="publish hello") as caught:
        flooding.transition(BoardState.RUNNING, config(private_broker))
    assert time.monotonic() - started < 3 * BOUND + SLACK
    assert len(str(caught.value)) < MESSAGE_LIMIT
    assert caught.value.log_path == virtual_board.capture.session_log

    good = FirmwareStrategy(virtual_board, Deploy(REPO / "firmware"), timeout=BOUND, record_dir=tmp_path)
    started = time.monotonic()
    good.transition(BoardState.RUNNING, config(private_broker, loop_period=0.2))
    assert time.monotonic() - started < 3 * BOUND + SLACK
    assert virtual_board.state is BoardState.RUNNING


def test_a_board_that_stops_reading_fails_a_write_in_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """A write to a board that takes nothing (wedged, a stalled USB endpoint) ends at the rig's
    write timeout instead of blocking the run."""
    monkeypatch.setattr(port_module, "WRITE_TIMEOUT", 0.5)
    board_end = FakeBoardEnd()  # never reads what the rig writes
    port = BoardPort(board_end.path, name="deaf")
    port.open()
    try:
        started = time.monotonic()
        with pytest.raises(BoardUnreachable, match=r"write to .* failed: Write timeout"):
            for _ in range(1000):  # the pty's buffer holds some kilobytes, then writes block
                port.write(b"x" * 4096)
        assert time.monotonic() - started < 0.5 + SLACK
    finally:
        port.close()
        board_end.unplug()
