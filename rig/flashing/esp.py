"""An Espressif chip's flash, driven through esptool's Python API (``esptool.cmds``, esptool 5).

The sequence is esptool's own CLI's, call for call: connect (reset into the ROM bootloader over
DTR/RTS and sync), load the flasher stub, raise the baud rate, attach the SPI flash; then
``erase_flash``, ``write_flash``, ``verify_flash`` and the stub's flash MD5 over a region, and
finally ``reset_chip`` (a hard reset through RTS) so that the new runtime boots. No protocol
code of the rig's own: esptool is the tool Espressif keeps for exactly this.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterator

import serial
from esptool import cmds
from esptool.loader import ESPLoader
from esptool.util import FatalError, pad_to

from rig.flashing.defaults import DEFAULT_BAUD, ROM_BAUD
from rig.flashing.image import Image
from rig.flashing.plan import FlashFailed

# Opens the chip in its bootloader: esptool's connect_esp in use, a fake chip in the tests.
Connect = Callable[[], ESPLoader]


def connect_over(port: str, chip: str) -> Connect:
    """esptool's own connection to ``chip`` on ``port`` (a device path or any pyserial URL)."""

    def connect() -> ESPLoader:
        return cmds.connect_esp(port=port, chip=chip, initial_baud=ROM_BAUD)

    return connect


class EspTarget:
    """One Espressif board's flash (``rig.flashing.plan.FlashTarget``).

    Lifecycle: the first step connects (and loads the stub, raises the baud rate, attaches the
    flash); the connection is kept across the steps of one plan; ``restart()`` hard-resets the
    chip into the new runtime and closes the port, which the REPL check then opens. ``close()``
    closes it without a reset (after a failure). Every esptool error is turned into
    ``FlashFailed`` naming the board and the step."""

    def __init__(self, board: str, connect: Connect, *, baud: int = DEFAULT_BAUD) -> None:
        self._board = board
        self._connect = connect
        self.baud = baud
        self._esp: ESPLoader | None = None

    @property
    def board(self) -> str:
        return self._board

    def holds(self, image: Image) -> bool:
        data = self._region(image)
        with self._step("compare"):
            on_chip = str(self._loader().flash_md5sum(self._offset(image), len(data)))
        return on_chip.lower() == hashlib.md5(data).hexdigest()

    def erase(self) -> None:
        with self._step("erase"):
            cmds.erase_flash(self._loader())

    def write(self, image: Image) -> None:
        # "keep": the image's header (flash mode, size, frequency) is written as built, so that
        # the bytes on the chip are the bytes that were pinned and hashed.
        with self._step("write"):
            cmds.write_flash(
                self._loader(),
                [(self._offset(image), self._read(image))],
                flash_freq="keep",
                flash_mode="keep",
                flash_size="keep",
            )

    def verify(self, image: Image) -> None:
        with self._step("verify"):
            cmds.verify_flash(
                self._loader(),
                [(self._offset(image), self._read(image))],
                flash_freq="keep",
                flash_mode="keep",
                flash_size="keep",
            )

    def restart(self) -> None:
        with self._step("restart"):
            cmds.reset_chip(self._loader(), "hard-reset")
        self.close()

    def close(self) -> None:
        esp, self._esp = self._esp, None
        if esp is not None:
            esp._port.close()  # esptool's own __exit__ does exactly this

    def _loader(self) -> ESPLoader:
        if self._esp is None:
            with self._step("connect"):
                esp = self._connect()
                try:
                    esp = cmds.run_stub(esp)
                    if self.baud != esp.get_baud():
                        esp.change_baud(self.baud)
                    cmds.attach_flash(esp)
                except BaseException:
                    esp._port.close()
                    raise
                self._esp = esp
        return self._esp

    def _offset(self, image: Image) -> int:
        if image.offset is None:
            raise FlashFailed(
                self._board, "plan", f"{image.path} is not an Espressif image (no flash offset)"
            )
        return image.offset

    def _read(self, image: Image) -> bytes:
        # Read again for each step, so checked again: a file replaced since it was checked
        # against its pin must not reach the chip.
        data = image.path.read_bytes()
        if hashlib.sha256(data).hexdigest() != image.sha256:
            raise FlashFailed(
                self._board, "read", f"{image.path} changed since it was checked against its pin"
            )
        return data

    def _region(self, image: Image) -> bytes:
        # esptool writes and hashes an image padded to 4 bytes with 0xff (write_flash,
        # verify_flash): the region compared must be that one.
        padded: bytes = pad_to(self._read(image), 4)
        return padded

    @contextlib.contextmanager
    def _step(self, step: str) -> Iterator[None]:
        try:
            yield
        except (FatalError, serial.SerialException, OSError) as e:
            raise FlashFailed(self._board, step, str(e).strip() or type(e).__name__) from e
