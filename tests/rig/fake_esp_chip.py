"""A fake ESP32 under esptool's own loader classes: the one mock of the flashing tests.

No test here can reach a real ESP32's ROM or the flasher stub esptool uploads to it: they sit
behind a USB-serial bridge these machines do not have. So the fake replaces exactly that: the
chip's answers to esptool's commands, below ``ESPLoader.command`` (the method that puts one
request on the wire and returns the response). Everything above it is esptool's real code:
``write_flash`` (compression, blocks, its own MD5 check), ``verify_flash``, ``erase_flash``,
``attach_flash``, the SPI flash-id probe over registers, ``flash_md5sum`` and ``reset_chip``.

What this cannot show: the reset into the bootloader over DTR/RTS and the sync, the stub's
upload and its "OHAI", the SLIP framing on a real UART, real flash timing, and a real ROM's
quirks. Those are esptool's, tested by Espressif on hardware.

The chip behaves as the ESP32 stub does: flash erased to 0xff, FLASH_BEGIN/DATA (plain) and
FLASH_DEFL_BEGIN/DATA (zlib) writing into a bytearray, SPI_FLASH_MD5 answering 16 raw bytes.
``fail_writes`` makes every data block fail, as a chip whose flash no longer takes data does.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from typing import Any

import serial
from esptool.loader import ESPLoader, StubMixin
from esptool.targets.esp32 import ESP32ROM

FOUR_MB = 4 * 1024 * 1024
# The JEDEC id a Winbond W25Q32 answers (manufacturer 0xef, 4 MB): esptool reads the size from it.
FLASH_ID = 0x1640EF
RDID = 0x9F
SPI_CMD_USR = 1 << 18
OK = b"\x00\x00"  # the stub's two status bytes: success
FAILED = b"\x01\x63"  # a failure status with a reason byte, as the stub sends one


class ChipState:
    """What the fake chip holds: its flash, its registers, the commands it was sent, resets."""

    def __init__(self, flash_size: int = FOUR_MB) -> None:
        self.flash = bytearray(b"\xff" * flash_size)
        self.registers: dict[int, int] = {}
        self.commands: list[str] = []
        self.hard_resets = 0
        self.fail_writes = False
        self._write: tuple[int, int] | None = None  # (next address, bytes left) of a plain write
        self._inflate: Any = None  # zlib.decompressobj of a compressed write
        self._inflate_at = 0


def _name(op: int) -> str:
    for name, value in ESPLoader.ESP_CMDS.items():
        if value == op:
            return str(name)
    return f"{op:#04x}"


class FakeEsp32Rom(ESP32ROM):  # type: ignore[misc]
    """The ESP32 ROM as esptool sees it after a sync that found the stub already running
    (``sync_stub_detected``): ``cmds.run_stub`` then swaps in ``STUB_CLASS`` (the fake stub)
    without uploading anything."""

    chip: ChipState

    def __init__(self, chip: ChipState) -> None:
        # An open loop:// port: esptool sets its baud rate and timeouts; nothing goes over it.
        super().__init__(serial.serial_for_url("loop://", baudrate=115200))
        self.chip = chip
        self.sync_stub_detected = True

    def command(
        self,
        op: int | None = None,
        data: bytes = b"",
        chk: int = 0,
        wait_response: bool = True,
        timeout: float = 3,
    ) -> tuple[int, bytes] | None:
        assert op is not None, "the fake chip answers commands, not stray reads"
        chip = self.chip
        chip.commands.append(_name(op))
        handler = _HANDLERS.get(op)
        if handler is None:
            raise AssertionError(f"the fake chip does not know command {_name(op)}: extend it")
        return handler(self, chip, data)

    def hard_reset(self, uses_usb: bool = False) -> None:
        self.chip.hard_resets += 1  # RTS pulsed: nothing to pulse on a loop:// port


class FakeEsp32Stub(StubMixin, FakeEsp32Rom):  # type: ignore[misc]
    def __init__(self, rom: FakeEsp32Rom) -> None:
        StubMixin.__init__(self, rom)
        self.chip = rom.chip


FakeEsp32Rom.STUB_CLASS = FakeEsp32Stub


def _read_reg(esp: FakeEsp32Rom, chip: ChipState, data: bytes) -> tuple[int, bytes]:
    (addr,) = struct.unpack("<I", data[:4])
    value = chip.registers.get(addr, 0)
    if addr == esp.SPI_REG_BASE:  # SPI_CMD: the user command is done as soon as it is started
        value &= ~SPI_CMD_USR
    return value, OK


def _write_reg(esp: FakeEsp32Rom, chip: ChipState, data: bytes) -> tuple[int, bytes]:
    addr, value, mask, _delay = struct.unpack("<IIII", data[:16])
    chip.registers[addr] = (chip.registers.get(addr, 0) & ~mask) | (value & mask)
    if addr == esp.SPI_REG_BASE and value & SPI_CMD_USR:
        command = chip.registers.get(esp.SPI_REG_BASE + esp.SPI_USR2_OFFS, 0) & 0xFF
        w0 = esp.SPI_REG_BASE + esp.SPI_W0_OFFS
        chip.registers[w0] = FLASH_ID if command == RDID else 0
    return 0, OK


def _ok(esp: FakeEsp32Rom, chip: ChipState, data: bytes) -> tuple[int, bytes]:
    return 0, OK


def _erase_flash(esp: FakeEsp32Rom, chip: ChipState, data: bytes) -> tuple[int, bytes]:
    chip.flash[:] = b"\xff" * len(chip.flash)
    return 0, OK


def _flash_begin(esp: FakeEsp32Rom, chip: ChipState, data: bytes) -> tuple[int, bytes]:
    size, _blocks, _block_size, offset = struct.unpack("<IIII", data[:16])
    chip.flash[offset : offset + size] = b"\xff" * size  # the stub erases what it will write
    chip._write = (offset, size)
    return 0, OK


def _flash_data(esp: FakeEsp32Rom, chip: ChipState, data: bytes) -> tuple[int, bytes]:
    length = struct.unpack("<IIII", data[:16])[0]
    if chip.fail_writes or chip._write is None:
        return 0, FAILED
    at, left = chip._write
    block = data[16 : 16 + length][:left] if left else data[16 : 16 + length]
    chip.flash[at : at + len(block)] = block
    chip._write = (at + len(block), max(0, left - len(block)))
    return 0, OK


def _defl_begin(esp: FakeEsp32Rom, chip: ChipState, data: bytes) -> tuple[int, bytes]:
    size, _blocks, _block_size, offset = struct.unpack("<IIII", data[:16])
    chip.flash[offset : offset + size] = b"\xff" * size
    chip._inflate = zlib.decompressobj()
    chip._inflate_at = offset
    return 0, OK


def _defl_data(esp: FakeEsp32Rom, chip: ChipState, data: bytes) -> tuple[int, bytes]:
    length = struct.unpack("<IIII", data[:16])[0]
    if chip.fail_writes or chip._inflate is None:
        return 0, FAILED
    out = chip._inflate.decompress(data[16 : 16 + length])
    chip.flash[chip._inflate_at : chip._inflate_at + len(out)] = out
    chip._inflate_at += len(out)
    return 0, OK


def _md5(esp: FakeEsp32Rom, chip: ChipState, data: bytes) -> tuple[int, bytes]:
    addr, size, _, _ = struct.unpack("<IIII", data[:16])
    return 0, hashlib.md5(bytes(chip.flash[addr : addr + size])).digest() + OK


_HANDLERS = {
    ESPLoader.ESP_CMDS["READ_REG"]: _read_reg,
    ESPLoader.ESP_CMDS["WRITE_REG"]: _write_reg,
    ESPLoader.ESP_CMDS["SPI_ATTACH"]: _ok,
    ESPLoader.ESP_CMDS["SPI_SET_PARAMS"]: _ok,
    ESPLoader.ESP_CMDS["CHANGE_BAUDRATE"]: _ok,
    ESPLoader.ESP_CMDS["ERASE_FLASH"]: _erase_flash,
    ESPLoader.ESP_CMDS["FLASH_BEGIN"]: _flash_begin,
    ESPLoader.ESP_CMDS["FLASH_DATA"]: _flash_data,
    ESPLoader.ESP_CMDS["FLASH_END"]: _ok,
    ESPLoader.ESP_CMDS["FLASH_DEFL_BEGIN"]: _defl_begin,
    ESPLoader.ESP_CMDS["FLASH_DEFL_DATA"]: _defl_data,
    ESPLoader.ESP_CMDS["FLASH_DEFL_END"]: _ok,
    ESPLoader.ESP_CMDS["SPI_FLASH_MD5"]: _md5,
}
