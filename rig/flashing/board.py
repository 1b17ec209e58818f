"""Flash one board of the inventory: pick its image, lock it, run the plan, read its runtime.

The one entry point of ``rig flash`` and of the gate's ``--flash``. The kind of board decides
the target: an ``esp32`` board is flashed through esptool on the port the inventory finds it
on; the virtual board gets its runtime slot filled (``rig.flashing.virtual``). Any other kind
is refused, naming the tool to use (``generic`` boards are whatever MicroPython port someone
put on them; the rig does not guess how to flash them).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from rig.board import virtual_flash
from rig.board.kinds import PortLister
from rig.board_choice import BenchBoard, board_lock, list_ports
from rig.discovery import find_port
from rig.errors import ConfigError
from rig.flashing.defaults import DEFAULT_BAUD, DEFAULT_CHIP
from rig.flashing.esp import Connect, EspTarget, connect_over
from rig.flashing.esp_image import load_esp_image
from rig.flashing.image import Image, ImageRejected, load_executable, sha256_of
from rig.flashing.plan import FlashOutcome, FlashTarget, flash
from rig.flashing.virtual import VirtualTarget, installed_runtime
from rig.inventory import BoardSpec
from rig.inventory.spec import BoardKind
from rig.runtime import RuntimeIdentity, RuntimePin, mismatches, read_runtime

PURPOSE = "rig flash"
# The kinds of board esptool flashes: the one place here a kind's name is looked at. A board the
# rig starts itself (the virtual board, ``KindTraits.started_here``) has a runtime slot instead.
ESPTOOL_KINDS: tuple[BoardKind, ...] = ("esp32",)


def pin_of(spec: BoardSpec) -> RuntimePin | None:
    """The board's runtime pin from the inventory (its own, a tag's or the defaults')."""
    return spec.runtime


def image_for(spec: BoardSpec, pin: RuntimePin | None, given: Path | None, chip: str = DEFAULT_CHIP) -> Image:
    """The image to flash onto ``spec``, checked offline: ``given`` (``--image``) else the pin's.
    A pin's sha256 applies to either (``--image`` must still be the pinned bytes when the board
    has a pin); a pin's image may be a folder, holding the file with that hash."""
    sha256 = pin.sha256 if pin is not None else None
    if spec.traits.started_here:
        path = given or (pin.image if pin is not None else None)
        if path is None and pin is not None and pin.micropython is not None:
            path, sha256 = Path(pin.executable() or pin.micropython), None  # pinned by version: no hash
        if path is None:
            raise _no_image(spec, "or micropython: ")
        return load_executable(_in_folder(path, sha256), sha256)
    if spec.kind not in ESPTOOL_KINDS:
        raise ConfigError(
            spec.origin or spec.name,
            "kind",
            f"board {spec.name} is of kind {spec.kind}: rig flash writes esp32 boards (esptool) and the "
            "virtual board; flash this one with its port's tool (mpflash: UF2 copy for rp2, DFU for stm32)",
        )
    path = given or (pin.image if pin is not None else None)
    if path is None:
        raise _no_image(spec, "")
    return load_esp_image(_in_folder(path, sha256), chip, sha256)


def target_for(
    spec: BoardSpec,
    workdir: Path,
    *,
    chip: str = DEFAULT_CHIP,
    baud: int = DEFAULT_BAUD,
    lister: PortLister = list_ports,
    connect: Connect | None = None,
) -> FlashTarget:
    """The flash of ``spec``. ``connect`` replaces esptool's connection (the tests' fake chip)."""
    if spec.traits.started_here:
        flash_folder, _note = virtual_flash.prepare(workdir, spec.name)
        return VirtualTarget(spec.name, flash_folder)
    if connect is None:
        connect = connect_over(find_port(spec, lister()), chip)
    return EspTarget(spec.name, connect, baud=baud)


def flash_board(
    spec: BoardSpec,
    image: Image,
    workdir: Path,
    *,
    pin: RuntimePin | None,
    erase: bool = False,
    lock_timeout: float,
    target: FlashTarget | None = None,
    lister: PortLister = list_ports,
    chip: str = DEFAULT_CHIP,
    baud: int = DEFAULT_BAUD,
    repl_timeout: float | None = None,
) -> FlashOutcome:
    """Lock ``spec``, flash ``image`` onto it (``rig.flashing.plan.flash``), then open it as any
    command does and read its runtime against ``pin``. The lock is held from before the first
    byte is compared to after the runtime is read: no run can take the board in between; the
    caller must not hold it (a gate flashes before it starts the board's run).

    ``workdir`` is the session folder the board is used from afterwards: a virtual board's flash,
    and so its runtime slot, is keyed by it (``rig.board.virtual_flash``); start the board with
    ``micropython=installed_runtime(workdir, name)`` to run what was flashed.
    ``repl_timeout`` bounds each rung of reaching the REPL after the restart (None: the board's
    own bound, 10 s; a first boot that makes the filesystem takes a few seconds).
    Raises ``FlashFailed`` or ``RuntimeNotMet`` (infrastructure errors of the board)."""
    lock = board_lock(spec, workdir, PURPOSE)
    lock.acquire(lock_timeout)
    read: list[RuntimeIdentity] = []
    try:
        if target is None:
            target = target_for(spec, workdir, chip=chip, baud=baud, lister=lister)

        def check_runtime() -> Sequence[str]:
            micropython = installed_runtime(workdir, spec.name) if spec.traits.started_here else None
            bench = BenchBoard(
                spec,
                workdir,
                purpose=PURPOSE,
                lock_timeout=lock_timeout,
                micropython=str(micropython) if micropython is not None else None,
                lister=lister,
                lock=lock,
            )
            if repl_timeout is not None:
                bench.board.timeout = repl_timeout
            board = bench.open()
            try:
                identity = read_runtime(board, timeout=repl_timeout)
            finally:
                bench.close()
            read.append(identity)
            return mismatches(pin, identity) if pin is not None else []

        try:
            outcome = flash(target, image, check_runtime, erase=erase)
        finally:
            close = getattr(target, "close", None)
            if callable(close):
                close()
    finally:
        lock.release()
    return dataclasses.replace(outcome, runtime=read[-1].describe())


def flash_to_pin(
    spec: BoardSpec,
    workdir: Path,
    *,
    lock_timeout: float,
    erase: bool = False,
    lister: PortLister = list_ports,
    chip: str = DEFAULT_CHIP,
) -> FlashOutcome:
    """The gate's ``--flash`` for one board: its pinned image onto it (written only when its flash
    holds other bytes), its runtime then checked against the pin. A board without a pin, or
    whose pin names no image (nor, for a virtual board, a ``micropython``), is a ``ConfigError``
    naming the board's entry."""
    pin = pin_of(spec)
    image = image_for(spec, pin, None, chip)
    return flash_board(
        spec, image, workdir, pin=pin, erase=erase, lock_timeout=lock_timeout, lister=lister, chip=chip
    )


def _in_folder(path: Path, sha256: str | None) -> Path:
    """``path`` itself, or for a folder the one file in it whose sha256 is ``sha256``."""
    if not path.is_dir():
        return path
    if sha256 is None:
        raise ImageRejected(path, "is a folder: a pin's sha256 says which file in it is the image")
    for candidate in sorted(p for p in path.iterdir() if p.is_file()):
        if sha256_of(candidate) == sha256:
            return candidate
    raise ImageRejected(path, f"no file in this folder has the pinned sha256 {sha256}", "sha256")


def _no_image(spec: BoardSpec, virtual: str) -> ConfigError:
    return ConfigError(
        spec.origin or spec.name,
        "runtime",
        f"board {spec.name} has no image to flash: give --image FILE, or pin one in boards.yaml "
        f"(runtime: {{image: FILE, sha256: ...}}{', ' + virtual.strip(': ') + ': PATH' if virtual else ''})",
    )
