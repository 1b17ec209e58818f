"""What one test session is: its testbed (broker and board), and the records of what ran on them."""

from __future__ import annotations

import dataclasses
import re
import secrets
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import rig
from rig.board.board import Board
from rig.board_choice import (
    AUTO,
    TAG_PREFIX,
    NoFreeBoard,
    choose_board,
    claim_board,
    health_order,
    is_board_set,
    selected_boards,
)
from rig.broker import Broker
from rig.broker.access import AccessPolicy
from rig.broker.record_log import RecordLog
from rig.broker.tls import TlsMaterial
from rig.errors import RigError
from rig.evidence import boot_time, junit_properties
from rig.evidence.run_audit import AuditVerdict, audit_run, hand_over
from rig.evidence.run_record import BoardInfo, BootRecord, BrokerInfo, FirmwareInfo, RunRecord, TestRecord
from rig.firmware_config import FirmwareConfig
from rig.history.writer import open_history, record_folder
from rig.inventory import BoardSpec, Inventory, load_inventory
from rig.lock import BoardLock
from rig.release.bundle import open_bundle
from rig.serial_events import parse_event
from rig.settings import RigSettings
from rig.strategy import FirmwareStrategy
from rig.testbed import Naming, Testbed

# A test session gives a board the rig starts (the virtual board) a network link of its own where
# this machine allows one, as a board on Wi-Fi has: the faults fixture cuts, blackholes and slows
# that link. Bench commands (rig deploy, monitor, exec) do not, so that a broker on this machine's
# loopback stays reachable from the board.
OWN_NETWORK = True


def artifact_dir(root: Path, nodeid: str) -> Path:
    """A folder per test, named so that a person finds it from the test id."""
    return root / re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("_")


class RigSession:
    """The broker and the board of one pytest session, started on first use, and the records of
    what ran on them. The wiring of broker, accounts, TLS, the board's config and its firmware
    strategy is the testbed's (``rig.testbed.Testbed``, the same as ``rig up``'s); this class
    adds what is pytest's: claiming a board, ``run.json``, JUnit properties, the secrets audit.

    Lifecycle: ``broker()`` and ``board()`` start their part the first time they are called;
    ``run_firmware(config)`` brings the firmware to running with that config through the
    board's strategy (``rig.strategy``), redeploying only what changed; ``close()`` stops
    everything that was started, by PID, and raises the first error so that a teardown failure
    reaches the report (the plugin calls it from a session fixture's finalizer). What ran is
    recorded in ``run.json``; every process started is listed in ``artifacts/session/pids.json``
    so that a leak can be found after the fact.

    Claiming: given a set of boards (``--rig-board a,b`` or ``tag:NAME``), and in every
    pytest-xdist worker (``worker``, its id), the session claims its board when it is made
    (``rig.board_choice.claim_board``: the first free one, no waiting) and keeps its artifacts under
    ``ARTIFACTS/<board>/``, so that workers never share a board nor a file. When none is free,
    ``no_board`` says why and every test that uses the rig is skipped with that reason
    (artifacts under ``ARTIFACTS/no-board-<worker>/``). The pytest-xdist controller
    (``controller``) runs no test: its session claims nothing and writes nothing.
    """

    def __init__(self, settings: RigSettings, *, worker: str | None = None, controller: bool = False) -> None:
        self.settings = settings
        self.worker = worker
        self.controller = controller
        self.run_id = secrets.token_hex(3)
        # Read now, so that a bad inventory stops the run before anything starts.
        self.inventory = (
            load_inventory(settings.inventory)
            if settings.inventory.exists() or settings.inventory_given
            else Inventory(settings.inventory, [])  # no bench file: the built-in virtual board
        )
        self._spec: BoardSpec | None = None
        # The board's lock, held from the claim until the board is opened (which takes it over).
        self._claim: BoardLock | None = None
        self.no_board: NoFreeBoard | None = None
        if not controller and (worker is not None or is_board_set(settings.board)):
            self._claim_board()
        self.dir = self.settings.artifacts / "session"
        if not controller:
            self.dir.mkdir(parents=True, exist_ok=True)
        self._testbed: Testbed | None = None
        self.run_record = RunRecord(rig_version=rig.__version__, started=time.time())
        # The release bundle deployed instead of the firmware tree (``--rig-release``): read and
        # checked against its manifest now, so that a bad bundle stops the run before it starts.
        self.release_hash = ""
        if self.settings.release is not None and not controller:
            self.release_hash = open_bundle(self.settings.release).hash
            self.run_record.release = self.release_hash
        self.run_path = self.settings.artifacts / "run.json"
        # --rig-history: the store is opened now, so that a bad URL stops the run before it starts.
        given = self.settings.origins.get("history") if self.settings.origins is not None else None
        history = given.value if given is not None else None
        self.history = open_history(history, settings.inventory) if history and not controller else None
        # The boot the firmware now runs on: its boot to connected (``note_boot``).
        self.boot: BootRecord | None = None
        self._save_record()

    def _claim_board(self) -> None:
        """Take the first free board of the selection; see the class docstring."""
        root = self.settings.artifacts
        candidates = selected_boards(self.inventory, self.settings.board)
        resting: dict[str, str] = {}
        if self.settings.board.startswith(TAG_PREFIX):  # board health picks among a tag's boards
            given = self.settings.origins.get("history") if self.settings.origins is not None else None
            history = given.value if given is not None else None
            candidates, resting = health_order(candidates, history or None, self.settings.inventory)
        purpose = f"pytest run {self.run_id}" + (f" (xdist worker {self.worker})" if self.worker else "")
        try:
            spec, lock = claim_board(
                candidates,
                lambda spec: root / spec.name / "session",
                purpose,
                selection=self.settings.board,
                resting=resting,
            )
        except NoFreeBoard as e:
            self.no_board = e
            folder = f"no-board-{self.worker}" if self.worker else "no-board"
            self.settings = dataclasses.replace(self.settings, artifacts=root / folder)
            return
        self._spec, self._claim = spec, lock
        self.settings = dataclasses.replace(self.settings, artifacts=root / spec.name)

    def _save_record(self) -> None:
        if not self.controller:
            self.run_record.save(self.run_path)

    def board_label(self) -> str:
        """How the report header names the board: ``auto (virtual)``, ``tag:wifi (bench-2)``..."""
        s = self.settings
        if self.controller:
            return f"{s.board} (each xdist worker claims a board of its own)"
        if self.no_board is not None:
            return f"{s.board} ({self.no_board.summary})"
        if self._spec is None and s.board != AUTO:
            return s.board  # one board by name: nothing to find out before a test asks for it
        try:
            name = self.spec().name
        except RigError as e:
            return f"{s.board} (not usable: {e})"
        return s.board if name == s.board else f"{s.board} ({name})"

    # -- parts -------------------------------------------------------------------------------

    def spec(self) -> BoardSpec:
        """The board this run tests, chosen once: by name, or ``auto``, or the one claimed.
        Raises ``NoFreeBoard`` when the session could claim none."""
        if self.no_board is not None:
            raise self.no_board
        if self._spec is None:
            if self.controller:
                raise RigError("the pytest-xdist controller runs no test; its workers take the boards")
            self._spec = choose_board(self.inventory, self.settings.board)
        return self._spec

    def testbed(self) -> Testbed:
        """The broker and the board of this run (``rig.testbed``), made on first use."""
        if self._testbed is None:
            self._testbed = Testbed(
                self.settings,
                self.dir,
                board=self.spec(),
                purpose=f"pytest run {self.run_id}",
                naming=Naming(self.run_id),
                own_network=OWN_NETWORK,
                claim=self._claim,
            )
            self._claim = None  # the testbed releases it from now on
        return self._testbed

    @property
    def board_running(self) -> bool:
        """Whether this run's board is open now (started by a test, not stopped since)."""
        return self._testbed is not None and self._testbed.board_opened

    def lend_board(self) -> None:
        """Stop this run's board, keeping its lock: a test of several boards plays one of its
        roles on it (``rig.multiboard.claim.LentLock``). The next test that asks for the board
        starts it again."""
        if self._testbed is not None:
            self._testbed.park_board()

    def broker(self) -> Broker:
        testbed = self.testbed()
        started = testbed.broker_started
        broker = testbed.broker()
        if not started:
            self.run_record.broker = BrokerInfo(broker.kind, broker.host, broker.port)
            self._save_record()
            hand_over(self.secrets())  # now, not at the end: a run killed on timeout has none
        return broker

    def tls_material(self) -> TlsMaterial | None:
        """With ``--rig-tls``: the run's CA and the broker's certificate (discarded at close)."""
        return self.testbed().tls_material()

    def access_policy(self) -> AccessPolicy:
        """The accounts of this run's embedded broker: the board's, the host's, the injector's
        and a neighbour's (``rig.broker.access``), the same for the whole run."""
        policy = self.testbed().access_policy()
        if policy is None:
            raise RigError(
                f"this run's broker admits anonymous clients: the firmware declares no login "
                f"({self.testbed().contract().path})"
            )
        return policy

    def opened_board(self) -> Board | None:
        """The board if a test opened it, else None; never opens it (rig.flaky asks it whether
        the board is broken after a failure)."""
        testbed = self._testbed
        if testbed is None or not testbed.board_opened:
            return None
        try:
            return testbed.board()
        except RigError:
            return None  # closed, or never could be had

    def board(self) -> Board:
        """The board, locked and connected; raises the same error for every caller if it cannot
        be had (``BoardNotPresent``, ``BoardBusy``, ``BoardUnreachable``)."""
        testbed = self.testbed()
        opened = testbed.board_opened
        board = testbed.board()
        if not opened:
            spec = self.spec()
            self.run_record.board = BoardInfo(
                spec.name, spec.kind, spec.match.serial_number, board.transport.port_url
            )
            self.run_record.runtime_pin = spec.runtime.summary() if spec.runtime else ""
            try:
                testbed.runtime()  # what MicroPython runs, checked against its pin (rig.runtime)
            finally:
                self.run_record.runtime = testbed.runtime_found
                self._save_record()
        return board

    def config_for(
        self,
        board: Board,
        loop_period: float | None = None,
        mode: str | None = None,
        *,
        keepalive: int | None = None,
        stats_every: int | None = None,
    ) -> FirmwareConfig:
        """The config.json for ``board`` in this run; what is not given is the run's setting
        (``Testbed.config``)."""
        if board is not self.board():
            raise RigError(f"{board.name} is not this run's board ({self.spec().name})")
        config = self.testbed().config(loop_period, mode, keepalive=keepalive, stats_every=stats_every)
        hand_over(self.secrets())  # its passwords, before the board is given them
        return config

    def audit_secrets(self, extra: Iterable[Path] = ()) -> AuditVerdict:
        """Search this run's artifacts (and ``extra`` files, e.g. the JUnit XML) for every secret
        it used; hand the secrets over to the gate when it asks (``rig.evidence.run_audit``).
        Everything under the artifacts is searched: the virtual board's flash, which holds the
        secrets in its config.json, lives outside them (``rig.board.virtual_flash``)."""
        secrets = self.secrets()
        hand_over(secrets)
        return audit_run([self.settings.artifacts, *extra], secrets, verdict_dir=self.settings.artifacts)

    def secrets(self) -> dict[str, str]:
        """Every secret value this run used, by name (``Testbed.secrets``)."""
        return self._testbed.secrets() if self._testbed is not None else {}

    # -- firmware ----------------------------------------------------------------------------

    def strategy(self) -> FirmwareStrategy:
        """The state machine that brings this session's board to running (connects it first)."""
        return self.testbed().strategy()

    def run_firmware(self, config: FirmwareConfig) -> Board:
        """The board with the firmware running with ``config`` and past its hello (see
        ``FirmwareStrategy``); what was deployed and what booted goes into ``run.json``."""
        board = self.testbed().run_firmware(config)
        strategy = self.strategy()
        boot = strategy.boot
        firmware = FirmwareInfo(
            tree_hash=strategy.last_deploy.tree_hash if strategy.last_deploy else "",
            version=boot.firmware,
            mpy=boot.micropython,
            platform=boot.platform,
            dependencies=strategy.dependencies,
        )
        if firmware != self.run_record.firmware:
            self.run_record.firmware = firmware
            self._save_record()
        return board

    def note_boot(
        self, board: Board, records: RecordLog, config: FirmwareConfig, test: str
    ) -> BootRecord | None:
        """Boot to connected of the board's last reset (``rig.evidence.boot_time``), when it was
        not measured yet: call it once the firmware was seen running, and again when a test ends
        (it may have reset the board itself). The figure goes into ``run.json`` (``boots``, and
        ``test``'s properties) and into the properties of every later test, until the next
        reset. None when the board was not reset since the last call."""
        at = board.last_reset_at
        if at is None or (self.boot is not None and self.boot.reset_at == at):
            return None
        self.boot = boot_time.measure(
            records,
            boot_time.Reset(board.last_reset_how, at),
            config.client_id,
            broker_kind=self.broker().kind,
            console_connected_at=_console_connected(board),
            test=test,
        )
        self.run_record.boots.append(self.boot)
        record = next((t for t in self.run_record.tests if t.nodeid == test), None)
        if record is not None:  # reset during the test: its own figure replaces the run's
            for key in boot_time.PROPERTIES:
                record.properties.pop(key, None)
            record.properties.update(boot_time.properties(self.boot))
        self._save_record()
        return self.boot

    def properties(self) -> dict[str, str]:
        """Per-test properties for JUnit and the report: which board, which firmware."""
        spec = self.spec()
        firmware = self.run_record.firmware
        props = {
            "board": spec.name,
            "board_kind": spec.kind,
            "usb_serial_number": spec.match.serial_number or "",
            "micropython": firmware.mpy,
            "platform": firmware.platform,
            "firmware_version": firmware.version,
            "firmware_tree_hash": firmware.tree_hash,
            junit_properties.FIRMWARE_DEPENDENCIES: firmware.dependency_summary(),
            "rig_version": rig.__version__,
            **junit_properties.runtime_properties(self.run_record.runtime, self.run_record.runtime_pin),
            junit_properties.RELEASE_BUNDLE: self.release_hash,
            **boot_time.properties(self.boot),
        }
        return {k: v for k, v in props.items() if v}

    def record_result(
        self,
        nodeid: str,
        name: str,
        report: Any,
        infrastructure: bool,
        artifacts: str,
        properties: dict[str, str],
    ) -> None:
        """Fold one phase's report into ``run.json``: the worst phase wins."""
        outcome = "error" if report.when != "call" and report.failed else str(report.outcome)
        record = next((t for t in self.run_record.tests if t.nodeid == nodeid), None)
        if record is None:
            record = TestRecord(nodeid, name, outcome, started=time.time() - report.duration)
            self.run_record.tests.append(record)
        elif _SEVERITY[outcome] > _SEVERITY[record.outcome]:
            record.outcome = outcome
        record.duration += report.duration
        record.infrastructure = record.infrastructure or infrastructure
        if report.failed or report.skipped:
            record.message = record.message or _short_message(report)
        record.artifacts = artifacts or record.artifacts
        record.properties.update(properties)
        self._save_record()

    # -- teardown ----------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the testbed (``Testbed.close``: board, broker, TLS, in that order) and release a
        claim no test used; ``run.json`` gets its end time whatever failed. Idempotent."""
        try:
            if self._testbed is not None:
                self._testbed.close()
        finally:
            if self._claim is not None:  # claimed, but no test ever asked for the board
                self._claim.release()
                self._claim = None
            self.run_record.finished = time.time()
            self._save_record()
            if self.history is not None:
                store, self.history = self.history, None
                with store:
                    record_folder(store, self.settings.artifacts, self.settings.firmware)


def _console_connected(board: Board) -> float | None:
    """When the console said ``connected`` since the board's last reset: the second witness."""
    for line in board.capture.lines(board.last_reset_index):
        event = parse_event(line.text)
        if event is not None and event.get("ev") == "connected":
            return line.t
    return None


_SEVERITY = {"passed": 0, "skipped": 1, "failed": 2, "error": 3}


def _short_message(report: Any) -> str:
    """The first lines of a failure or the skip reason, for run.json and the report's grid."""
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2])
    text = str(getattr(report, "longreprtext", "") or report.longrepr or "")
    lines = [ln for ln in text.splitlines() if ln.startswith("E ")] or text.splitlines()[-20:]
    return "\n".join(lines[:40])
