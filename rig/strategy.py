"""Bringing a board to "firmware running": one small state machine, as labgrid's strategies are.

The states are the board's own (``BoardState``): unknown -> connected -> deployed -> running,
and broken. ``FirmwareStrategy.transition`` walks a board up to the state asked for, doing only
what is missing: connect, deploy (only when the wanted config.json differs from what is on the
board), soft-reset (when a test left the firmware stopped), then wait for the firmware's hello
and check the boot line against the deployed tree.

A failure of the rig on the way (``InfrastructureError``: the port vanished; no REPL even after
the board's escalation, Ctrl-C then a hard reset, each rung bounded by the strategy's timeout
whatever the board prints) marks the board broken, the escalation's last rung, and every later
transition fails at once: tests on a board that cannot be reached are skipped as infrastructure
failures, not retried against a timeout each.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rig.atomic import write_atomically
from rig.board.board import Board, BoardState, BoardUnresponsive
from rig.deadline import Deadline
from rig.deploy.sync import DeployReport
from rig.errors import BoardUnreachable, ConnectRejected, DeployError, InfrastructureError, WaitTimeout
from rig.evidence.run_record import DependencyInfo
from rig.firmware_config import FirmwareConfig
from rig.offline_reason import ConnectProbe, ConnectWitness, offline_error, why_offline
from rig.serial_events import event_matches, parse_event
from rig.serialio.capture import TAIL_LINES

# Puts the firmware and ``config`` on the board, then soft-resets it (``deploy_firmware``).
Deployer = Callable[[Board, FirmwareConfig], DeployReport]
# For a firmware that prints no "@rig" boot and "published" lines: waits until a witness off the
# board (the host's MQTT client) saw the hello published after ``since`` (wall clock); False when
# ``deadline`` expired first.
HelloWitness = Callable[[FirmwareConfig, float, Deadline], bool]

# The states a transition can be asked to reach; the others (stopped, broken) only happen.
TARGETS = (BoardState.CONNECTED, BoardState.DEPLOYED, BoardState.RUNNING)
# The firmware's events for "the broker would not let me in": the wait for hello ends on them.
REJECTED = ("connect_refused", "tls_error")


@dataclass(frozen=True)
class BootInfo:
    """What the firmware said in its boot line: its version, MicroPython's, the platform, and
    the hash of the file tree it runs."""

    firmware: str = ""
    micropython: str = ""
    platform: str = ""
    tree: str = ""

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> BootInfo:
        return cls(
            firmware=str(event.get("fw", "")),
            micropython=str(event.get("mpy", "")),
            platform=str(event.get("platform", "")),
            tree=str(event.get("tree", "")),
        )


class FirmwareStrategy:
    """Walks one board to a wanted state and remembers what it deployed and what booted.

    Lifecycle: one per board, made once the board is connected (or before: ``transition``
    connects it). ``transition(target, config)`` returns once the board is in ``target`` with
    ``config``, or raises: ``WaitTimeout`` when the firmware does not say hello, ``DeployError``
    when it runs another tree than was deployed, an ``InfrastructureError`` when the rig failed
    (the board is then broken, and every later call raises ``BoardUnreachable`` at once).
    ``last_deploy`` and ``boot`` are the last deploy's report and the last boot line seen.
    """

    def __init__(self, board: Board, deploy: Deployer, *, timeout: float, record_dir: Path) -> None:
        self.board = board
        self._deploy = deploy
        self.timeout = timeout
        # Every wait on the board the strategy causes (the deploy's REPL, a soft reset) is bound
        # by the run's timeout, whatever the board prints: a flooding board must not hang a run.
        board.timeout = timeout
        # deploy.json, what the last deploy wrote: named in the error when the board runs other files.
        self.deploy_record = record_dir / "deploy.json"
        self.last_deploy: DeployReport | None = None
        self.boot = BootInfo()
        # How the hello is seen when the firmware's contract declares no event lines for it.
        self.hello_witness: HelloWitness | None = None
        # The broker's word on a board that did not say hello (``rig.offline_reason``).
        self.connect_witness: ConnectWitness | None = None
        # Capture index from which the firmware a deploy restarted has not been seen saying hello
        # yet: a transition to "deployed" leaves it so, the next one to "running" waits for it.
        self._boot_pending_from: int | None = None
        # Set by ``restart_before_next_run``: the next run restarts the firmware, whatever runs.
        self._restart = False

    @property
    def dependencies(self) -> list[DependencyInfo]:
        """The locked dependencies the last deploy installed."""
        return list(self.last_deploy.dependencies) if self.last_deploy else []

    def transition(self, target: BoardState | str, config: FirmwareConfig | None = None) -> None:
        """Bring the board to ``target`` ("connected", "deployed" or "running"); ``config`` is
        the firmware's config.json, needed from "deployed" on."""
        target = BoardState(target)
        if target not in TARGETS:
            raise ValueError(
                f"a board cannot be brought to {target.value}; one of {[t.value for t in TARGETS]}"
            )
        board = self.board
        if board.state is BoardState.BROKEN:
            raise BoardUnreachable(f"{board.name} is broken: {board.broken_reason}")
        try:
            if board.state is BoardState.UNKNOWN:
                board.connect()
            if target is BoardState.CONNECTED:
                return
            if config is None:
                raise ValueError(f"bringing {board.name} to {target.value} needs the firmware's config")
            if target is BoardState.DEPLOYED:
                if board.deployed_config != config:
                    self._deploy_now(config)
                return
            self._run(config)
        except InfrastructureError as e:
            # The tests skipped after this one get the gist; this one's failure has it all.
            board.mark_broken(e.summary if isinstance(e, BoardUnresponsive) else str(e))
            raise

    def restart_before_next_run(self) -> None:
        """The next transition to "running" restarts the firmware (a soft reset, then its hello)
        even if it already runs as wanted: what an earlier test left in the firmware's memory
        (payloads it goes on echoing) is then gone."""
        self._restart = True

    def _run(self, config: FirmwareConfig) -> None:
        board = self.board
        start = board.capture.next_index
        restart, self._restart = self._restart, False
        # The broker's records from before the restart on: its word on whether the board came.
        probe = self.connect_witness() if self.connect_witness is not None else None
        if board.deployed_config != config:
            self._deploy_now(config)  # rewrites only config.json when only the config changed
        elif board.state is not BoardState.RUNNING or restart:
            board.soft_reset(timeout=self.timeout)
        elif self._boot_pending_from is not None:
            start = self._boot_pending_from  # deployed and restarted, not yet seen running
        else:
            return  # runs as wanted: nothing to do
        try:
            self._await_hello(config, start, probe)
        finally:
            # Waited for once, whatever came of it: a firmware that never says hello fails the
            # test that restarted it, and later tests are not each held up by the same wait.
            self._boot_pending_from = None

    def _deploy_now(self, config: FirmwareConfig) -> None:
        self._boot_pending_from = self.board.capture.next_index
        report = self._deploy(self.board, config)
        self.board.record_deploy(config)
        self.last_deploy = report
        record = {
            "tree_hash": report.tree_hash,
            "written": report.written,
            "unchanged": report.unchanged,
            "seconds": round(report.seconds, 3),
            "files": report.files,
            "dependencies": [asdict(d) for d in report.dependencies],
        }
        write_atomically(self.deploy_record, json.dumps(record, indent=1))

    def _await_hello(self, config: FirmwareConfig, start: int, probe: ConnectProbe | None = None) -> None:
        capture = self.board.capture
        deadline = Deadline(self.timeout)
        # The hello must come from the firmware that booted after the rig's last reset: the old
        # firmware's circulating hello goes on being echoed until a reset stops it, and a deploy
        # that had to power-cycle a board to reach its REPL boots the old firmware once more
        # before its own soft reset starts the new one.
        start = max(start, self.board.last_reset_index)
        if not config.contract.emits("boot", "published"):
            self._await_hello_off_board(config, start, deadline)
            return
        booted = capture.wait(
            lambda ln: (ev := parse_event(ln.text)) is not None and ev.get("ev") == "boot",
            start,
            deadline,
            include_partial=False,
        )
        if booted is None:
            raise WaitTimeout(
                f"the firmware to boot, connect and publish hello on {config.echo_topic} "
                "(no boot line since the reset)",
                self.timeout,
                self.board.last_seen(TAIL_LINES, start),
                capture.session_log,
            )
        hello = {"topic": config.echo_topic, "hex": b"hello".hex()}
        line = capture.wait(
            lambda ln: (
                (ev := parse_event(ln.text)) is not None
                and (event_matches(ev, "published", hello) or ev.get("ev") in REJECTED)
            ),
            booted.index + 1,
            deadline,
            include_partial=False,
        )
        rejected = parse_event(line.text) if line is not None else None
        if rejected is not None and rejected.get("ev") in REJECTED:
            raise ConnectRejected(_rejection(rejected, config), rejected, capture.session_log)
        if line is None:
            # Named when the console says why (Wi-Fi, the broker), checked against the broker.
            events = [ev for ln in capture.lines(booted.index) if (ev := parse_event(ln.text)) is not None]
            raise offline_error(
                why_offline(events, config, probe(config.client_id) if probe is not None else None),
                f"the firmware to boot, connect and publish hello on {config.echo_topic}",
                self.timeout,
                self.board.last_seen(TAIL_LINES, start),
                capture.session_log,
            )
        self._check_boot(start)

    def _await_hello_off_board(self, config: FirmwareConfig, start: int, deadline: Deadline) -> None:
        """The hello of a firmware without event lines, as the hello witness saw it after the
        reset's first console line (the old firmware was stopped before it)."""
        lines = self.board.capture.lines(start)
        since = lines[0].t if lines else time.time()
        if self.hello_witness is None or config.contract.hello is None:
            what = "no hello witness" if self.hello_witness is None else "no hello in its contract"
            raise DeployError(
                f"{self.board.name}: the firmware ({config.contract.path}) prints no @rig boot and "
                f"published lines, and {what}: nothing can tell when it is running"
            )
        if not self.hello_witness(config, since, deadline):
            raise WaitTimeout(
                f"the firmware to connect and publish {config.contract.hello!r} on {config.echo_topic}, "
                "as the host's MQTT client sees it (it prints no @rig lines)",
                self.timeout,
                self.board.last_seen(TAIL_LINES, start),
                self.board.capture.session_log,
            )
        self.boot = BootInfo()

    def _check_boot(self, start: int) -> None:
        """Read the last boot line since ``start``; the tree it reports must be the deployed one."""
        board = self.board
        boots = [
            event
            for ln in board.capture.lines(start)
            if (event := parse_event(ln.text)) is not None and event.get("ev") == "boot"
        ]
        if not boots:
            return
        self.boot = BootInfo.from_event(boots[-1])
        deployed = self.last_deploy.tree_hash if self.last_deploy else ""
        if deployed and "tree" in boots[-1] and self.boot.tree != deployed:
            raise DeployError(
                f"{board.name} runs firmware tree {self.boot.tree[:12] or '(none)'} but tree "
                f"{deployed[:12]} was deployed: a stale or foreign file on the board? "
                f"See {self.deploy_record} and {board.capture.session_log}"
            )


def _rejection(event: dict[str, Any], config: FirmwareConfig) -> str:
    """What a person should check, from the firmware's own report of why it could not get in."""
    where = f"{config.broker_host}:{config.broker_port}"
    if event.get("ev") == "tls_error":
        return (
            f"the board's TLS handshake with the broker at {where} failed: {event.get('detail')} "
            f"(check tls_ca and tls_server_name={config.tls_server_name!r} in its config.json "
            "against the broker's certificate)"
        )
    return (
        f"the broker at {where} refused the board's login as {config.broker_user!r}: CONNACK "
        f"{event.get('code')} ({event.get('reason')}) (check broker_user and broker_password in its "
        "config.json against the broker's accounts)"
    )
