"""The broker and the boards of one test of several boards: started together, stopped together.

Each board is whole, as the single board of a run is: its own testbed (``rig.testbed.Testbed``,
given the group's broker and the board's claimed lock), serial log, timeline, host client on its
topics, broker records, health watch and artifacts folder (``<test folder>/<role>-<board>/``).
All share one broker, whose accounts are the group's (``rig.multiboard.grants``).
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rig.board.board import Board
from rig.board_choice import broker_bind_address
from rig.broker import Broker, make_broker
from rig.broker.access import HOST
from rig.broker.tls import TlsMaterial
from rig.evidence.broker_tap import BrokerLogTap
from rig.evidence.timeline import Timeline
from rig.firmware_config import FirmwareConfig
from rig.fixtures.contract import DeclaredSerialLog, hello_seen_by, with_contract
from rig.health.failures import HealthFailure
from rig.health.watch import HealthWatch
from rig.host_client import HostClient
from rig.multiboard.claim import Claim
from rig.multiboard.grants import group_naming, group_policy
from rig.multiboard.roles import BoardsRequest
from rig.multiboard.wire import BoardLink, own_links
from rig.settings import RigSettings
from rig.testbed import BROKER_START_MIN_S, DEFAULT_KEEPALIVE, Testbed
from rig.wire.witness import WireWitness

__all__ = ["BoardGroup", "GroupBoard"]


@dataclass
class GroupBoard:
    """One board of a test of several boards, whole: ``board`` (running the firmware with
    ``config``), ``serial_log``, ``mqtt`` (a host client subscribed to its topics), ``records``
    (what the broker saw of its client id), ``health``, ``folder``, ``wire`` (what its own link
    carried, ``rig.multiboard.wire``). ``label`` names it in every message: ``a (vb-1)``."""

    role: str
    testbed: Testbed
    board: Board
    folder: Path
    timeline: Timeline
    serial_log: DeclaredSerialLog
    mqtt: HostClient
    broker_log: BrokerLogTap
    health: HealthWatch
    config: FirmwareConfig
    link: BoardLink

    @property
    def wire(self) -> WireWitness:
        return self.link.witness

    @property
    def name(self) -> str:
        return self.board.name

    @property
    def label(self) -> str:
        return f"{self.role} ({self.name})"

    @property
    def records(self) -> Any:
        return self.broker_log.records

    def findings(self) -> list[HealthFailure]:
        """What the health watch found on this board, each naming it."""
        return [HealthFailure(f"on board {self.label}: {f}") for f in self.health.findings()]

    def close(self) -> list[BaseException]:
        errors: list[BaseException] = []
        # The link before the timeline: its close writes the wire's rows there.
        parts = (self.mqtt, self.link, self.broker_log, self.serial_log, self.timeline)
        for part in parts:
            try:
                part.close()
            except Exception as e:
                errors.append(e)
        try:
            self.testbed.close()  # the board stopped by PID and its lock released; not the broker
        except Exception as e:
            errors.append(e)
        return errors


class BoardGroup:
    """The boards of one test (``boards.a``, ``boards.b``...) on one broker.

    Lifecycle: made with the claim (every board locked) and nothing started; ``start()`` starts
    the broker with the group's accounts, then each board in role order, firmware running and
    past its hello; ``close()`` stops the boards (releasing their locks), then the broker, and
    returns every failure. Attribute access by role: ``group.a`` is the ``GroupBoard`` of role a.
    """

    def __init__(
        self,
        settings: RigSettings,
        request: BoardsRequest,
        claim: Claim,
        *,
        run_id: str,
        folder: Path,
        workdir_of: Callable[[str], Path],
        purpose: str,
    ) -> None:
        self.settings = settings
        self.request = request
        self.claim = claim
        self.run_id = run_id
        self.folder = folder
        self.purpose = purpose
        self._workdir_of = workdir_of
        by_role = {role: spec.name for role, spec in claim.boards.items()}
        self.naming = group_naming(run_id, request, by_role)
        self.policy = group_policy(self.naming, list(by_role.values()))
        self.broker: Broker | None = None
        self.tls: TlsMaterial | None = None
        self.boards: dict[str, GroupBoard] = {}
        # Why the boards share this machine's network (no wire witness), or None (rig.multiboard.wire).
        self.no_links: str | None = None

    def __getattr__(self, role: str) -> GroupBoard:
        boards = self.__dict__.get("boards", {})
        if role in boards:
            return boards[role]  # type: ignore[no-any-return]
        raise AttributeError(f"this test has no board in role {role!r} (roles: {', '.join(boards)})")

    def __iter__(self) -> Iterator[GroupBoard]:
        return iter(self.boards.values())

    def describe(self) -> str:
        """Each role, its board and its folder: what a failure report shows."""
        lines = [f"  {b.label}: {b.folder}" for b in self.boards.values()]
        waiting = [role for role in self.claim.boards if role not in self.boards]
        lines += [f"  {role} ({self.claim.boards[role].name}): not started" for role in waiting]
        return "\n".join(lines)

    def start(self, loop_period: float, mode: str, app: Mapping[str, Any] | None = None) -> None:
        s = self.settings
        # Where every board can reach it: a board on the network's side (the bench address), else
        # loopback, where the virtual boards find it.
        specs = list(self.claim.boards.values())
        on_network = [spec for spec in specs if not spec.traits.started_here]
        host = broker_bind_address(on_network[0] if on_network else specs[0], own_network=False)
        self.broker = make_broker(
            s.broker,
            self.folder / "broker",
            s.broker_url,
            source="--rig-broker",
            host=host,
            access=self.policy,
        )
        self.broker.start(timeout=max(s.timeout, BROKER_START_MIN_S))
        self.no_links = own_links(specs)
        for role, spec in self.claim.boards.items():
            self.boards[role] = self._start_board(role, spec.name, loop_period, mode, app or {})

    def _start_board(
        self, role: str, name: str, loop_period: float, mode: str, app: Mapping[str, Any]
    ) -> GroupBoard:
        assert self.broker is not None
        s = self.settings
        spec = self.claim.boards[role]
        testbed = Testbed(
            s,
            self._workdir_of(name),
            board=spec,
            purpose=self.purpose,
            naming=self.naming,
            # A link of its own for each virtual board, the broker relayed onto it (rig.multiboard.wire).
            own_network=self.no_links is None,
            broker=self.broker,
            claim=self.claim.take_lock(name),
        )
        folder = self.folder / f"{role}-{name}"
        shutil.rmtree(folder, ignore_errors=True)  # this test's files only, as every test's folder
        folder.mkdir(parents=True)
        timeline = Timeline(folder)
        parts: list[Any] = [timeline]
        try:
            board = testbed.board()
            link = BoardLink.open(
                board, self.broker, folder, timeline, lambda: self.secrets().values(), self.no_links
            )
            parts.append(link)
            testbed.runtime()
            contract = testbed.contract()
            serial_log = DeclaredSerialLog(board.capture, folder / "serial.log", timeline, contract)
            parts.append(serial_log)
            health = HealthWatch(serial_log.capture, serial_log.start, serial_log.path)
            config = testbed.config(loop_period, mode, keepalive=DEFAULT_KEEPALIVE)
            config = with_contract(config, s.firmware)
            if app:
                config = replace(config, app={**config.app, **app})
            tap = BrokerLogTap(self.broker, config.client_id, folder, timeline)
            parts.append(tap)
            mqtt = HostClient(
                self.broker.host,
                self.broker.port,
                f"rig-host-{self.run_id}-{role}",
                trace_path=folder / "mqtt.jsonl",
                timeline=timeline,
                login=self.broker.login(HOST),
            )
            parts.append(mqtt)
            mqtt.connect(timeout=s.timeout)
            for topics in config.watch_filters():
                mqtt.subscribe(topics, timeout=s.timeout)
            testbed.strategy().hello_witness = hello_seen_by(mqtt)
            serial_log.note(f"board {role} of a test of several boards; firmware loop period {loop_period}s")
            testbed.run_firmware(config)
        except BaseException:
            for part in reversed(parts):
                with contextlib.suppress(Exception):
                    part.close()
            with contextlib.suppress(Exception):
                testbed.close()
            raise
        return GroupBoard(role, testbed, board, folder, timeline, serial_log, mqtt, tap, health, config, link)

    def secrets(self) -> dict[str, str]:
        found = dict(self.policy.secrets())
        if self.tls is not None:
            found.update(self.tls.secrets())
        for b in self.boards.values():
            found.update(b.testbed.secrets())
        return found

    def close(self) -> list[BaseException]:
        """Stop every board (locks released), then the broker; every failure, in that order."""
        errors: list[BaseException] = []
        for b in reversed(list(self.boards.values())):
            errors += b.close()
        self.boards.clear()
        self.claim.release()  # the locks of boards never started
        if self.broker is not None:
            try:
                self.broker.stop()
            except Exception as e:
                errors.append(e)
            self.broker = None
        if self.tls is not None:
            self.tls.discard()  # its private keys; ``secrets()`` still knows their values
        return errors
