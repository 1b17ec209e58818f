"""From a board's name to a connected, locked board: shared by the pytest plugin and the CLI.

``--rig-board`` names one board (or ``auto``), or a set to take one from: a list ``a,b`` or a
tag ``tag:wifi``. A run given a set (and every pytest-xdist worker) *claims* a board:
``claim_board`` tries each board of the set once, without waiting, and keeps the first one whose
lock it gets; so that parallel workers each end up on a board of their own.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from serial.tools.list_ports_common import ListPortInfo

from rig.board import virtual_flash
from rig.board.board import Board
from rig.board.kinds import LOOPBACK, PortLister, kind_of
from rig.broker import Broker
from rig.broker.access import board_role
from rig.contract import FirmwareContract
from rig.discovery import BoardNotPresent, NoBoardPresent, find_port, pick_auto, ports
from rig.errors import ConfigError, InfrastructureError, RigError
from rig.firmware_config import FirmwareConfig
from rig.inventory import BoardSpec, Inventory, Secret
from rig.lock import BoardBusy, BoardLock


def list_ports() -> Sequence[ListPortInfo]:
    # Looked up at call time: the one seam where tests put fabricated USB records, since a
    # USB device's identity is the one thing that cannot be made real here.
    return ports.list_serial_ports()


AUTO = "auto"
TAG_PREFIX = "tag:"
# The virtual board a run falls back to when the inventory names none.
BUILTIN_VIRTUAL = BoardSpec(name="virtual", kind="virtual", origin="built in")


def choose_board(inventory: Inventory, name: str, lister: PortLister = list_ports) -> BoardSpec:
    """The board to test. ``auto``: the single USB board of the inventory that is plugged in,
    else the inventory's (or the built-in) virtual board. A name: that board, with its secrets
    checked (a missing variable is an error naming the file, line and key)."""
    if name == BUILTIN_VIRTUAL.name and name not in inventory.names():
        return BUILTIN_VIRTUAL  # every machine has the virtual board, inventory or not
    if name != AUTO:
        return inventory.select(name)
    try:
        return inventory.select(pick_auto(inventory.boards, lister()).name)
    except NoBoardPresent:
        started_here = [spec for spec in inventory.boards if spec.traits.started_here]
        return inventory.select(started_here[0].name) if started_here else BUILTIN_VIRTUAL


def flash_dir(workdir: Path, spec: BoardSpec) -> Path:
    """Where a board the rig starts keeps its flash when used from the session folder
    ``workdir``: a private folder outside the artifacts (``rig.board.virtual_flash``)."""
    return virtual_flash.flash_dir(workdir, spec.name)


def board_lock(spec: BoardSpec, workdir: Path, purpose: str, lock_dir: Path | None = None) -> BoardLock:
    """The lock of ``spec`` as used from ``workdir`` (a virtual board is keyed by its flash)."""
    return BoardLock(kind_of(spec).lock_identity(spec, workdir), lock_dir, purpose=purpose)


def is_board_set(selection: str) -> bool:
    """True when ``--rig-board`` names a set to claim a board from: ``a,b`` or ``tag:NAME``."""
    return selection.startswith(TAG_PREFIX) or "," in selection


def selected_boards(
    inventory: Inventory, selection: str, source: str = "--rig-board", lister: PortLister = list_ports
) -> list[BoardSpec]:
    """The boards ``selection`` names, in its order (a tag: in the inventory's): ``a,b``,
    ``tag:NAME``, or one name or ``auto`` (as ``choose_board``). Each is checked as for a run
    (its secrets set). Raises ``ConfigError`` naming ``source`` for an empty list or tag, and
    ``InventoryError`` for an unknown name."""
    if selection.startswith(TAG_PREFIX):
        tag = selection[len(TAG_PREFIX) :].strip()
        if not tag:
            raise ConfigError(source, "board", f"expected tag:NAME, got {selection!r}")
        tagged = inventory.with_tags(tag)
        if not tagged:
            known = sorted({t for spec in inventory.boards for t in spec.tags})
            raise ConfigError(
                source,
                "board",
                f"no board of {inventory.path} carries tag {tag!r} (tags: {', '.join(known) or 'none'})",
            )
        return [inventory.select(spec.name) for spec in tagged]
    names = [name.strip() for name in selection.split(",")]
    if not all(names):
        raise ConfigError(source, "board", f"expected board names separated by commas, got {selection!r}")
    return [choose_board(inventory, name, lister) for name in dict.fromkeys(names)]


class NoFreeBoard(InfrastructureError):
    """None of the boards a run may claim could be had now: each was held by another run, or
    (a board on a port) not plugged in. ``summary`` is one line, for a skip reason."""

    def __init__(
        self,
        selection: str,
        busy: dict[str, BoardBusy],
        absent: dict[str, BoardNotPresent],
        resting: dict[str, str] | None = None,
    ) -> None:
        self.selection = selection
        self.busy = busy  # board name -> who holds it
        self.absent = absent
        self.resting = resting or {}  # board name -> why board health took it out, since when
        self.summary = f"no free board among {selection}: " + "; ".join(
            [f"{name} in use" for name in busy]
            + [f"{name} not plugged in" for name in absent]
            + [f"{name} out of rotation" for name in self.resting]
        )
        details = [f"  {name}: {e}" for name, e in busy.items()]
        details += [f"  {name}: {e.summary}" for name, e in absent.items()]
        details += [f"  {name}: out of rotation: {why}" for name, why in self.resting.items()]
        super().__init__("\n".join([self.summary, *details]))


def claim_board(
    candidates: Sequence[BoardSpec],
    workdir_of: Callable[[BoardSpec], Path],
    purpose: str,
    *,
    selection: str = "",
    lister: PortLister = list_ports,
    lock_dir: Path | None = None,
    resting: dict[str, str] | None = None,
) -> tuple[BoardSpec, BoardLock]:
    """The first of ``candidates`` that is present and whose lock is free now, and its lock,
    held (give it to ``BenchBoard``). Each lock is tried once, without waiting: the boards
    another run holds are busy for that run's length, and the caller has others to try.
    ``workdir_of(spec)`` is the session folder the board would be used from (its lock is keyed
    by it for a virtual board). Raises ``NoFreeBoard``, saying why of each."""
    busy: dict[str, BoardBusy] = {}
    absent: dict[str, BoardNotPresent] = {}
    needs_ports = any(not spec.traits.started_here for spec in candidates)
    present_ports = list(lister()) if needs_ports else []
    for spec in candidates:
        if not spec.traits.started_here:
            try:
                find_port(spec, present_ports)
            except BoardNotPresent as e:
                absent[spec.name] = e
                continue
        lock = board_lock(spec, workdir_of(spec), purpose, lock_dir)
        try:
            lock.acquire(0)
        except BoardBusy as e:
            busy[spec.name] = e
            continue
        return spec, lock
    raise NoFreeBoard(selection or ",".join(spec.name for spec in candidates), busy, absent, resting)


def health_order(
    candidates: Sequence[BoardSpec], history: str | None, inventory: Path
) -> tuple[list[BoardSpec], dict[str, str]]:
    """A ``tag:`` claim's candidates in the order to try them (rig.history.health): those in
    rotation, good before suspect, fewest recent failures first; and the boards left out, each
    with why and since when. The store is ``history``, else the lab's beside ``inventory`` if
    one exists (a claim creates none); without a store, ``candidates`` as they are. Raises
    ``ValveTripped`` when too many would be left out."""
    from rig.history import available

    if not available():
        return list(candidates), {}
    from rig.history.health import by_fewest_failures, configured, lab_health, out_of_rotation
    from rig.history.store import DEFAULT_FILE, default_url, open_store

    if history is None and not (inventory.resolve().parent / DEFAULT_FILE).is_file():
        return list(candidates), {}
    bad_after, share = configured()
    with open_store(history or default_url(inventory)) as store:
        healths = lab_health(store, [spec.name for spec in candidates], bad_after)
    resting = {h.board: h.describe() for h in out_of_rotation(healths, share)}
    by_name = {spec.name: spec for spec in candidates}
    return [by_name[h.board] for h in by_fewest_failures(healths)], resting


class BenchBoard:
    """A board taken for one user of the bench: locked, then connected.

    Lifecycle: ``open()`` takes the board's lock (waiting at most ``lock_timeout``, then
    ``BoardBusy`` names the holder), starts or finds the board (``BoardNotPresent`` says what was
    searched and what is plugged in) and opens its port; ``close()`` closes the board, then
    releases the lock, and raises the first failure. ``board`` is valid between the two.
    """

    def __init__(
        self,
        spec: BoardSpec,
        workdir: Path,
        *,
        purpose: str,
        lock_timeout: float,  # the settings table's --rig-lock-timeout, as each caller has it
        micropython: str | None = None,
        lister: PortLister = list_ports,
        lock_dir: Path | None = None,
        own_network: bool = False,
        lock: BoardLock | None = None,
    ) -> None:
        """``lock``: the board's lock when the caller holds it already (``claim_board``); it is
        released at ``close()`` like one taken here."""
        self.spec = spec
        self.flash_dir = flash_dir(workdir, spec)
        kind = kind_of(spec)
        self.lock = lock if lock is not None else board_lock(spec, workdir, purpose, lock_dir)
        self.lock_timeout = lock_timeout
        self._transport = kind.make_transport(
            spec, workdir, micropython, lister, own_network, busy_wait=lock_timeout
        )
        self.board = Board(self._transport, session_log=workdir / f"serial-{spec.name}.log")

    def open(self) -> Board:
        if not self.lock.held:
            self.lock.acquire(self.lock_timeout)
        try:
            self.board.connect()
        except BaseException:
            self._close_board_quietly()
            self.lock.release()
            raise
        return self.board

    def _close_board_quietly(self) -> None:
        # The failure that brought us here is the one to report.
        with contextlib.suppress(RigError):
            self.board.close()

    def close(self) -> None:
        try:
            self.board.close()
        finally:
            self.lock.release()


@dataclass(frozen=True)
class RunSecrets:
    """A Wi-Fi password made up for one run, for a board whose bench gives it none.

    A real board always has a Wi-Fi password in its config; a virtual board would have none,
    and a firmware that prints it would go unnoticed there. So every run makes one up, random so
    that it can never match anything else the board prints. (Broker credentials are never made
    up here: the embedded broker's come from its ``AccessPolicy``, an external one's from the
    inventory or the environment.)
    """

    wifi_password: str = field(repr=False)

    @classmethod
    def generate(cls) -> RunSecrets:
        return cls(wifi_password=f"wifi-{secrets.token_hex(8)}")


def board_config(
    spec: BoardSpec,
    broker: Broker,
    *,
    client_id: str,
    topic_prefix: str,
    loop_period: float,
    mode: str = "reference",
    keepalive: int = 30,
    stats_every: int | None = None,
    run_secrets: RunSecrets | None = None,
    own_network: bool = False,
    contract: FirmwareContract | None = None,
) -> FirmwareConfig:
    """The firmware's config.json for ``spec``: the broker as the board sees it, its Wi-Fi
    credentials taken from the environment through the inventory, and its broker login: the
    board's own account when the broker has an ``AccessPolicy`` (the embedded one), else the
    inventory's, else the external broker's from the environment. A board that joins no
    network gets the Wi-Fi password of ``run_secrets`` (never used, only guarded)."""
    net = spec.network
    wifi_password = _plain(net.wifi_password)
    if run_secrets is not None and wifi_password is None and not spec.traits.networked:
        wifi_password = run_secrets.wifi_password
    broker_user, broker_password = _plain(net.broker_user), _plain(net.broker_password)
    login = broker.login(board_role(spec.name)) if broker.access is not None else None
    if login is None and broker_user is None and broker_password is None:
        login = broker.login(board_role(spec.name))  # an external broker's, from the environment
    if login is not None:
        broker_user, broker_password = login.user, login.password
    limits = {"stats_every": stats_every} if stats_every is not None else {}
    # A broker with a TLS listener is reached over TLS: the board trusts the run's CA only.
    tls = broker.tls
    return FirmwareConfig(
        broker_host=kind_of(spec).broker_host_for_board(spec, broker.host, own_network),
        broker_port=broker.tls_port if tls is not None and broker.tls_port is not None else broker.port,
        tls_ca=tls.ca_pem if tls is not None else None,
        tls_server_name=tls.server_name if tls is not None else None,
        client_id=client_id,
        topic_prefix=topic_prefix,
        loop_period=loop_period,
        keepalive=keepalive,
        mode=mode,
        wifi_ssid=_plain(net.wifi_ssid),
        wifi_password=wifi_password,
        broker_user=broker_user,
        broker_password=broker_password,
        app=limits,
        **({"contract": contract} if contract is not None else {}),
    )


def guarded_secrets(spec: BoardSpec, config: FirmwareConfig) -> dict[str, str]:
    """The secrets of ``config`` by name: what the board must never print. The broker user is
    one only when the inventory took it from a secret (``${VAR}``): a user written out in plain
    text, or one of the rig's accounts (``board-NAME``), is a name, and hiding every "esp32" on
    the console would hide far more than a secret."""
    named = {
        "wifi_password": config.wifi_password,
        "broker_password": config.broker_password,
        "broker_user": config.broker_user if isinstance(spec.network.broker_user, Secret) else None,
    }
    return {key: value for key, value in named.items() if value}


def broker_bind_address(spec: BoardSpec | None, own_network: bool = False) -> str:
    """Where the embedded broker listens: loopback unless a board on the network must reach it."""
    return LOOPBACK if spec is None else kind_of(spec).broker_bind_address(spec, own_network)


def _plain(value: str | Secret | None) -> str | None:
    if isinstance(value, Secret):
        return value.reveal()
    return value
