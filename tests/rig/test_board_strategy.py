"""The state machine that brings a board to "firmware running", on the virtual board with the
real firmware, deploy and broker."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from rig.board import Board
from rig.board.board import BoardState
from rig.broker import Broker
from rig.deploy.step import deploy_firmware
from rig.deploy.sync import DeployReport
from rig.errors import BoardUnreachable
from rig.firmware_config import FirmwareConfig
from rig.strategy import FirmwareStrategy

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 10.0


def config(broker: Broker, loop_period: float = 0.1) -> FirmwareConfig:
    return FirmwareConfig(
        broker_host=broker.host,
        broker_port=broker.port,
        client_id=f"strategy-{os.getpid()}",
        topic_prefix=f"rig/strategy/{os.getpid()}",
        loop_period=loop_period,
    )


def state(board: Board) -> BoardState:
    # A call, so that a type checker does not take the state for fixed between two actions.
    return board.state


class CountingDeploy:
    """The real deploy, counted: the strategy must deploy only when the config changes."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, board: Board, config: FirmwareConfig) -> DeployReport:
        self.calls += 1
        return deploy_firmware(board, REPO / "firmware", config)


def test_it_deploys_once_restarts_a_stopped_board_and_redeploys_a_new_config(
    virtual_board: Board, private_broker: Broker, tmp_path: Path
) -> None:
    deploy = CountingDeploy()
    strategy = FirmwareStrategy(virtual_board, deploy, timeout=TIMEOUT, record_dir=tmp_path)
    assert state(virtual_board) is BoardState.CONNECTED
    wanted = config(private_broker)

    strategy.transition("deployed", wanted)
    assert deploy.calls == 1 and virtual_board.deployed_config == wanted
    strategy.transition(BoardState.RUNNING, wanted)
    assert state(virtual_board) is BoardState.RUNNING
    assert deploy.calls == 1, "the config on the board was already the one wanted"
    assert strategy.last_deploy is not None
    assert strategy.boot.firmware and strategy.boot.tree == strategy.last_deploy.tree_hash
    assert (tmp_path / "deploy.json").exists()

    start = virtual_board.capture.next_index
    strategy.transition(BoardState.RUNNING, wanted)
    assert virtual_board.capture.next_index - start < 3, "a running board is left alone"

    virtual_board.interrupt()
    assert state(virtual_board) is BoardState.STOPPED
    strategy.transition(BoardState.RUNNING, wanted)
    assert state(virtual_board) is BoardState.RUNNING and deploy.calls == 1, "restarted, not redeployed"

    strategy.transition(BoardState.RUNNING, config(private_broker, loop_period=0.2))
    assert deploy.calls == 2 and virtual_board.config.loop_period == 0.2


def test_a_board_the_rig_cannot_reach_is_broken_and_not_retried(
    virtual_board: Board, private_broker: Broker, tmp_path: Path
) -> None:
    deploy = CountingDeploy()
    strategy = FirmwareStrategy(virtual_board, deploy, timeout=2.0, record_dir=tmp_path)
    wanted = config(private_broker)
    strategy.transition(BoardState.RUNNING, wanted)
    virtual_board.interrupt()
    firmware_pid = virtual_board.transport.firmware_pid  # type: ignore[attr-defined]
    os.kill(firmware_pid, signal.SIGSTOP)  # wedged: no REPL prompt comes back
    try:
        with pytest.raises(BoardUnreachable, match="no REPL prompt"):
            strategy.transition(BoardState.RUNNING, wanted)
        assert state(virtual_board) is BoardState.BROKEN
        assert "no REPL prompt" in (virtual_board.broken_reason or "")

        started = time.monotonic()
        with pytest.raises(BoardUnreachable, match=r"is broken: .*no REPL prompt"):
            strategy.transition(BoardState.RUNNING, wanted)
        assert time.monotonic() - started < 0.5, "a broken board is not tried again"
        virtual_board.interrupt()  # the board's own actions go on, but do not revive it
        assert state(virtual_board) is BoardState.BROKEN
    finally:
        os.kill(firmware_pid, signal.SIGCONT)


def test_the_board_owns_its_state(virtual_board: Board) -> None:
    with pytest.raises(AttributeError):
        virtual_board.state = BoardState.RUNNING  # type: ignore[misc]
    with pytest.raises(AttributeError):
        virtual_board.deployed_config = None  # type: ignore[misc]


def test_only_reachable_states_can_be_asked_for(virtual_board: Board, tmp_path: Path) -> None:
    strategy = FirmwareStrategy(virtual_board, CountingDeploy(), timeout=TIMEOUT, record_dir=tmp_path)
    with pytest.raises(ValueError, match="cannot be brought to broken"):
        strategy.transition(BoardState.BROKEN)
    with pytest.raises(ValueError, match="needs the firmware's config"):
        strategy.transition(BoardState.RUNNING)
    strategy.transition("connected")
    assert state(virtual_board) is BoardState.CONNECTED
