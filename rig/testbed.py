"""A broker plus a board, ready to test: the one place that wires them together.

The pytest plugin's session (``rig.session``), ``rig up``, ``rig broker`` and ``rig deploy`` all
need some of the same parts: the embedded broker, locked down (``rig.broker.access``) and, with
``tls``, over TLS (``rig.broker.tls``); a board, locked and connected (``rig.board_choice.BenchBoard``);
its config.json pointing at that broker (``rig.board_choice.board_config``); and the strategy that brings
its firmware to running (``rig.strategy``). ``Testbed`` makes each of them, in one way, from
the settings table (``rig.settings.RigSettings``), and stops what it started.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from rig.atomic import write_atomically
from rig.board.board import Board, BoardState
from rig.board.virtual import VirtualBoard
from rig.board_choice import BenchBoard, RunSecrets, board_config, broker_bind_address, guarded_secrets
from rig.broker import Broker, make_broker
from rig.broker.access import NEIGHBOUR_BOARD, AccessPolicy
from rig.broker.access import topic_prefix as run_topic_prefix
from rig.broker.credentials_file import write_credentials
from rig.broker.factory import broker_version
from rig.broker.tls import TlsMaterial
from rig.contract import FirmwareContract, firmware_contract
from rig.deploy.step import deploy_firmware
from rig.errors import ConfigError, InfrastructureError, RigError
from rig.firmware_config import FirmwareConfig
from rig.flashing.image import sha256_of
from rig.flashing.virtual import installed_runtime
from rig.inventory import BoardSpec
from rig.lock import BoardLock
from rig.offline_reason import broker_connect_witness
from rig.release.bundle import Bundle, open_bundle
from rig.release.on_board import release_deployer
from rig.release.target import RuntimeRefused, executable_runtime
from rig.release.target import check_runtime as check_bundle_runtime
from rig.runtime import RuntimeIdentity, RuntimeMismatch, check_runtime, read_runtime
from rig.settings import OPTIONS, RigSettings, resolve
from rig.strategy import Deployer, FirmwareStrategy

# A broker gets at least this long (s) to start, however short the bound of a wait on the board:
# a loaded machine takes seconds to start amqtt's Python, and a failed start says why anyway.
BROKER_START_MIN_S = 10.0
# The MQTT keepalive (s) the firmware asks for unless a test says otherwise (the ``keepalive``
# marker): long enough that no test's pauses come near it.
DEFAULT_KEEPALIVE = 30


class ReleaseRefused(InfrastructureError):
    """The release bundle under test is not built for the runtime this board runs: the board is
    not tested (the bench gave the release another runtime than it ships with, the firmware is
    not to blame). The message names both runtimes; every later test would meet it again."""

    stops_run = True


def check_started_image(board: Board, spec: BoardSpec, identity: RuntimeIdentity) -> None:
    """For a board the rig starts (the virtual board) pinned to an image: raise
    ``RuntimeMismatch`` unless the executable it was started on is that image, byte for byte. A
    version string does not tell two builds of one version apart; the hash does (a real board's
    flash is compared by ``rig flash`` and ``rig gate --flash``, which read it back). The message
    names what each one runs."""
    pin = spec.runtime
    transport = board.transport
    if pin is None or pin.sha256 is None or not isinstance(transport, VirtualBoard):
        return
    started = Path(transport.micropython)
    found = sha256_of(started)
    if found == pin.sha256:
        return
    try:
        pinned = executable_runtime(pin.image).describe() if pin.image is not None else "(not read)"
    except ConfigError as e:
        pinned = f"(could not be read: {e})"
    raise RuntimeMismatch(
        board.name,
        pin,
        identity,
        [
            f"image: pinned {pin.image} (sha256 {pin.sha256[:12]}, runs {pinned}), but the board was "
            f"started on {started} (sha256 {found[:12]}): flash it (rig flash {spec.name}, "
            "or rig gate --flash)"
        ],
    )


@dataclass(frozen=True)
class Naming:
    """How a testbed names a board's topics and its MQTT client.

    A test run (``run_id`` given) puts both under the run, so that two runs on one shared broker
    never meet. A bench (no ``run_id``: ``rig up``, ``rig broker``, ``rig deploy``) uses
    ``rig/BOARD`` and ``rig-BOARD``, the same from one command to the next, so that the accounts
    ``rig broker`` made fit the board ``rig deploy`` set up.
    """

    run_id: str | None = None

    def topic_prefix(self, board: str) -> str:
        return f"rig/{board}" if self.run_id is None else run_topic_prefix(board, self.run_id)

    def client_id(self, board: str) -> str:
        return f"rig-{board}" if self.run_id is None else f"rig-{board}-{self.run_id}"


class Testbed:
    """The broker and the board of one user of the rig (a test session, a ``rig`` command).

    Lifecycle, each step on first use (a later call returns what the first made):

    1. built from the settings and the board to use: nothing starts yet;
    2. ``broker()``: the access policy (an account for each board of ``accounts_for``, the host's,
       the injector's and a neighbour's), the TLS material (with ``settings.tls``), and the
       broker started with both; or the ``broker`` the caller gave (an external one), as it is;
    3. ``board()``: the board, locked (or the ``claim`` the caller holds) and connected;
    4. ``config(...)``: the board's config.json pointing at the broker; its secrets are hidden
       from the board's capture from then on (``secrets()`` names them all for the audit);
    5. ``strategy()``: the ``FirmwareStrategy`` of the board, deploying ``settings.firmware``;
    6. ``run_firmware(config)``: the firmware running with ``config`` and past its hello;
    7. ``write_credentials()``: for a person, the accounts in a file readable by its owner only;
    8. ``close()``: the credentials file deleted, the board closed (a board the rig started is
       stopped by PID) and its lock released, the broker stopped by PID, the TLS keys deleted:
       the reverse of the start. Each part is tried; the first failure is raised after all of
       them. Idempotent: a second close does nothing. A ``with`` block closes it too.

    What the caller may rely on: a board that cannot be had raises the same error for every
    caller (``BoardNotPresent``, ``BoardBusy``, ``BoardUnreachable``); every process started is
    listed in ``WORKDIR/pids.json`` as soon as it started, so that a leak can be found after the fact.
    """

    __test__ = False  # a name pytest would otherwise try to collect from the tests that import it

    def __init__(
        self,
        settings: RigSettings,
        workdir: Path,
        *,
        board: BoardSpec | None,
        purpose: str,
        naming: Naming,
        own_network: bool,
        accounts_for: Sequence[BoardSpec] | None = None,
        broker_host: str | None = None,
        locked_down: bool | None = None,
        claim: BoardLock | None = None,
        broker: Broker | None = None,
    ) -> None:
        """``board``: the board to run (None: a broker only, as ``rig broker``). ``own_network``:
        a board the rig starts gets a network link of its own (a test session), which decides
        where the broker listens and how the board sees it. ``accounts_for``: the boards given
        an account (default: ``board``). ``broker_host``: where the broker listens (default:
        where ``board`` can reach it). ``locked_down``: accounts and an ACL (True), or anonymous
        clients on every topic (False); by default, as the firmware's contract says
        (``rig.contract``: a firmware that declares no login, as the tutorial's, gets an open
        broker, and the checks of the lock-down are then "not checked"), locked down for a
        broker alone.
        ``claim``: the board's lock, held by the caller (``rig.board_choice.claim_board``); released at
        close like one taken here. ``broker``: a broker the caller made (an external one); it
        is used as it is, neither started nor stopped here."""
        self.settings = settings
        self.workdir = workdir
        self.spec = board
        self.purpose = purpose
        self.naming = naming
        self.own_network = own_network
        self._accounts_for = list(accounts_for) if accounts_for is not None else [b for b in [board] if b]
        self._broker_host = broker_host
        self._bundle: Bundle | None = None  # read on first use (``release_bundle``)
        if locked_down is None:
            locked_down = self.contract().login if board is not None else True
        self._locked_down = locked_down
        self._claim = claim
        self._given_broker = broker
        # Credentials of this testbed for a board the bench gives none (see ``RunSecrets``): the
        # same for every config, or each test would redeploy a new config.json.
        self.run_secrets = RunSecrets.generate()
        self._access: AccessPolicy | None = None
        self._tls: TlsMaterial | None = None
        self._broker: Broker | None = None
        self._bench: BenchBoard | None = None
        self._board: Board | None = None
        # Why the board cannot be had (absent, busy): every caller is told the same.
        self._unavailable: Exception | None = None
        self._strategy: FirmwareStrategy | None = None
        # What the board runs, once ``runtime()`` read it (kept when it does not meet the pin).
        self.runtime_found: RuntimeIdentity | None = None
        self._guarded: dict[str, str] = {}
        self._credentials: Path | None = None
        self._closed = False

    def contract(self) -> FirmwareContract:
        """What the firmware (``settings.firmware``) declares: its topics, client id, login,
        config keys and events (``rig.contract``); a ``ConfigError`` naming the file if it has none.
        With a release bundle (``settings.release``), the contract it carries."""
        bundle = self.release_bundle()
        return bundle.firmware_contract() if bundle is not None else firmware_contract(self.settings.firmware)

    def release_bundle(self) -> Bundle | None:
        """The release bundle this testbed deploys instead of the firmware tree
        (``settings.release``), read and checked against its manifest once; None without one."""
        if self.settings.release is not None and self._bundle is None:
            self._bundle = open_bundle(self.settings.release)
        return self._bundle

    # -- the broker ---------------------------------------------------------------------------

    def access_policy(self) -> AccessPolicy | None:
        """The accounts of this testbed's broker (``rig.broker.access``), made once; None when
        it admits anonymous clients (``locked_down=False``)."""
        if self._locked_down and self._access is None:
            names = [spec.name for spec in self._accounts_for]
            self._access = AccessPolicy.generate(
                {name: self.naming.topic_prefix(name) for name in names},
                self.naming.topic_prefix(NEIGHBOUR_BOARD),
                client_ids={
                    **{name: self._client_id(name) for name in names},
                    NEIGHBOUR_BOARD: self.naming.client_id(NEIGHBOUR_BOARD),
                },
            )
        return self._access

    def _client_id(self, board: str) -> str:
        """The client id ``board``'s config.json carries: the rig's, or the one the firmware fixes."""
        given = self.naming.client_id(board)
        if self.spec is None:  # a broker alone (rig broker): no firmware of its own to ask
            return given
        contract = self.contract()
        return contract.render(contract.client_id, prefix=self.naming.topic_prefix(board), client_id=given)

    def tls_material(self) -> TlsMaterial | None:
        """With ``settings.tls``: the CA and the broker's certificate, made once (deleted at close)."""
        if self.settings.tls and self._tls is None:
            self._tls = TlsMaterial.generate()
        return self._tls

    @property
    def broker_started(self) -> bool:
        return self._broker is not None

    def broker(self) -> Broker:
        """The broker, running: the embedded one (``settings.broker``), or the one given."""
        self._check_open()
        if self._broker is None:
            if self._given_broker is not None:
                self._broker = self._given_broker
                return self._broker
            s = self.settings
            host = self._broker_host
            if host is None:
                host = broker_bind_address(self.spec, self.own_network)
            broker = make_broker(
                s.broker,
                self.workdir / "broker",
                s.broker_url,
                source="--rig-broker",
                host=host,
                access=self.access_policy(),
                tls=self.tls_material(),
            )
            broker.start(timeout=max(s.timeout, BROKER_START_MIN_S))
            self._broker = broker
            self._record_pids()
        return self._broker

    def write_credentials(self) -> Path | None:
        """The broker's accounts and addresses in a file readable by its owner only
        (``rig.broker.credentials_file``), for a person; deleted at close. None when the broker
        has no accounts of the rig's (open, or external)."""
        broker = self.broker()
        if broker.access is None:
            return None
        if self._credentials is None:
            self._credentials = write_credentials(broker)
        return self._credentials

    # -- the board ----------------------------------------------------------------------------

    def board_spec(self) -> BoardSpec:
        if self.spec is None:
            raise RigError(f"{self.purpose} runs a broker only: it has no board")
        return self.spec

    @property
    def board_opened(self) -> bool:
        return self._board is not None

    def board(self) -> Board:
        """The board, locked and connected; raises the same error for every caller if it cannot
        be had."""
        self._check_open()
        if self._unavailable is not None:
            raise self._unavailable
        if self._board is None:
            spec = self.board_spec()
            s = self.settings
            # A virtual board pinned to another unix port runs that one (``runtime.micropython``).
            pinned = spec.runtime.executable() if spec.runtime is not None else None
            if pinned is None and spec.traits.started_here:
                # What ``rig flash`` (or the gate's --flash) put in its runtime slot, as a real
                # board runs what was flashed onto it (``rig.flashing.virtual``).
                flashed = installed_runtime(self.workdir, spec.name)
                pinned = str(flashed) if flashed is not None else None
            bench = BenchBoard(
                spec,
                self.workdir,
                purpose=self.purpose,
                lock_timeout=s.lock_timeout,
                micropython=pinned or s.micropython,
                own_network=self.own_network,
                lock=self._claim,
            )
            self._claim = None  # the bench board releases it from now on, at close or on failure
            # Before anything is read from the port: a firmware that prints its config must not
            # show the inventory's secrets (an SSID given as ${VAR} too: ``PRINTABLE_SECRETS``),
            # nor those of a config already made.
            bench.board.capture.redact(spec.secret_values())
            bench.board.capture.redact(self._guarded)
            try:
                self._board = bench.open()
            except InfrastructureError as e:
                self._unavailable = e
                raise
            self._bench = bench
            self._record_pids()
        return self._board

    def park_board(self) -> None:
        """Stop the board and keep its lock: a test of several boards plays a role on it
        meanwhile (``rig.multiboard``). The next ``board()`` opens it again, and the firmware is
        brought to running from the start (a strategy of its own, the board changed hands)."""
        self._check_open()
        if self._bench is None:
            return  # never opened: its lock (``_claim``) is held already, nothing runs
        self._record_pids()
        bench, self._bench, self._board, self._strategy = self._bench, None, None, None
        self._claim = bench.lock  # held, and released at close like a claim never opened
        bench.board.close()

    def runtime(self) -> RuntimeIdentity:
        """What MicroPython the board runs (``rig.runtime.read_runtime``), read once, when first
        asked, and checked against the board's pin (``runtime:`` in boards.yaml). Reading
        interrupts what runs, as a deploy does. A board that does not meet its pin, or does not
        say what it runs, is not tested: the error (``RuntimeMismatch``, an infrastructure error
        that names the pin and what was found) is raised here and by every later ``board()``.
        ``runtime_found`` keeps what was read, matching or not."""
        board = self.board()
        if self.runtime_found is None:
            try:
                self.runtime_found = read_runtime(board, timeout=self.settings.timeout)
                check_runtime(board.name, self.board_spec().runtime, self.runtime_found)
                check_started_image(board, self.board_spec(), self.runtime_found)
                bundle = self.release_bundle()
                if bundle is not None:
                    try:
                        check_bundle_runtime(
                            board.name, self.runtime_found, bundle.manifest.runtime, bundle.hash
                        )
                    except RuntimeRefused as e:
                        raise ReleaseRefused(str(e)) from e
            except InfrastructureError as e:
                self._unavailable = e
                raise
        return self.runtime_found

    def config(
        self,
        loop_period: float | None = None,
        mode: str | None = None,
        *,
        keepalive: int | None = None,
        stats_every: int | None = None,
    ) -> FirmwareConfig:
        """The board's config, in the shape its contract declares, pointing at the broker (started
        if it was not); what is not
        given is the setting's (``keepalive``: ``DEFAULT_KEEPALIVE``). Its secrets
        are handed to the board's capture, which hides them and records by name every line
        that carried one."""
        spec = self.board_spec()
        config = board_config(
            spec,
            self.broker(),
            client_id=self.naming.client_id(spec.name),
            topic_prefix=self.naming.topic_prefix(spec.name),
            loop_period=loop_period if loop_period is not None else self.settings.loop_period,
            mode=mode or self.settings.firmware_mode,
            keepalive=keepalive if keepalive is not None else DEFAULT_KEEPALIVE,
            stats_every=stats_every,
            run_secrets=self.run_secrets,
            own_network=self.own_network,
            contract=self.contract(),
        )
        guarded = guarded_secrets(spec, config)
        self._guarded.update(guarded)
        if self._board is not None:
            self._board.capture.redact(guarded)
        return config

    def strategy(self) -> FirmwareStrategy:
        """The state machine that brings the board to running (it connects the board first)."""
        if self._strategy is None:
            s = self.settings
            bundle = self.release_bundle()
            # A release is deployed exactly as built, every file checked on the board by hash
            # (``rig.release.on_board``); otherwise the firmware tree, only what changed.
            deploy: Deployer = (
                release_deployer(bundle)
                if bundle is not None
                else lambda board, config: deploy_firmware(
                    board,
                    s.firmware,
                    config,
                    cache_dir=s.deps_cache,
                    offline=s.offline,
                    index_dir=s.deps_index,
                )
            )
            self._strategy = FirmwareStrategy(
                self.board(),
                deploy,
                timeout=s.timeout,
                record_dir=self.workdir,
            )
            # A board that never says hello: the broker's records say whether it came.
            self._strategy.connect_witness = broker_connect_witness(self.broker())
        return self._strategy

    def run_firmware(self, config: FirmwareConfig) -> Board:
        """The board with the firmware running with ``config`` and past its hello, deploying
        only what changed (see ``FirmwareStrategy``)."""
        strategy = self.strategy()
        strategy.transition(BoardState.RUNNING, config)
        return strategy.board

    # -- what was used ------------------------------------------------------------------------

    def secrets(self) -> dict[str, str]:
        """Every secret value this testbed used, by name: the broker's passwords, the TLS keys,
        and what the board's configs carried. The secrets audit searches the artifacts for them."""
        found = {**(self.spec.secret_values() if self.spec is not None else {}), **self._guarded}
        if self._access is not None:
            found.update(self._access.secrets())
        if self._tls is not None:
            found.update(self._tls.secrets())
        return found

    def process_ids(self) -> dict[str, list[int]]:
        pids: dict[str, list[int]] = {}
        if self._broker is not None and self._broker.pid is not None:
            pids["broker"] = [self._broker.pid]
        if self._board is not None:
            pids["board"] = self._board.transport.process_ids()
        return pids

    def _record_pids(self) -> None:
        path = self.workdir / "pids.json"
        known: dict[str, list[int]] = json.loads(path.read_text()) if path.exists() else {}
        for role, pids in self.process_ids().items():
            known[role] = sorted(set(known.get(role, [])) | set(pids))
        self.workdir.mkdir(parents=True, exist_ok=True)
        write_atomically(path, json.dumps(known))

    # -- the end ------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise RigError(f"the testbed of {self.purpose} is closed")

    def close(self) -> None:
        """Stop and release everything, in the reverse order of the start; see the class docstring."""
        if self._closed:
            return
        self._closed = True
        errors: list[BaseException] = []
        if self._credentials is not None:
            with contextlib.suppress(FileNotFoundError):
                self._credentials.unlink()
            self._credentials = None
        if self._bench is not None:
            self._record_pids()
            try:
                self._bench.close()
            except Exception as e:  # every part is stopped; the first failure is reported
                errors.append(e)
            self._bench = self._board = self._strategy = None
        if self._broker is not None and self._broker is not self._given_broker:
            try:
                self._broker.stop()
            except Exception as e:
                errors.append(e)
        self._broker = None
        if self._tls is not None:
            self._tls.discard()  # its private keys; ``secrets()`` still knows their values
        if self._claim is not None:  # claimed, but the board was never opened
            self._claim.release()
            self._claim = None
        if errors:
            raise errors[0]

    def __enter__(self) -> Testbed:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        if error is None:
            self.close()
            return
        # The failure that ended the block is the one to report; a part that then failed to
        # stop goes with it, as a note where Python has them.
        try:
            self.close()
        except RigError as e:
            if sys.version_info >= (3, 11):
                error.add_note(f"also, while stopping the testbed: {e}")


def broker_identity(broker: Broker) -> str:
    """Which broker this is, for a person: ``mosquitto 2.0.11``, ``amqtt 0.12.1`` (the version
    as ``rig.broker.factory.broker_version`` tells it, as the pytest header does), or an external
    one's address. Results differ between brokers (amqtt enforces no keepalive and speaks MQTT
    3.1.1 only), so ``rig up`` and ``rig broker`` say which one runs."""
    if broker.kind in ("mosquitto", "amqtt"):
        return f"{broker.kind} {broker_version(broker.kind) or '(version unknown)'}"
    return f"{broker.kind} broker at {broker.host}:{broker.port}"


def settings_from(given: Mapping[str, object], root: Path) -> RigSettings:
    """The settings of a ``rig`` command: what it was given, by the table's names
    (``{"lock-timeout": 10.0, "firmware": Path("firmware"), "tls": False}``), read through the
    settings table (``rig.settings.resolve``) as the pytest plugin's options are, so that the
    environment and the defaults fill the rest alike. None means not given."""
    unknown = sorted(set(given) - {option.name for option in OPTIONS})
    if unknown:
        raise ValueError(f"not in the settings table: {', '.join(unknown)}")
    by_dest = {option.dest: _as_text(given.get(option.name)) for option in OPTIONS}
    return resolve(by_dest.get, root)


def _as_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)
