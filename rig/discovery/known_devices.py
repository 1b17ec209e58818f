"""USB VID:PID pairs that a MicroPython bench is likely to see: data, not logic.

Only well-documented IDs are listed (vendor datasheets, the Linux usb-serial drivers, and the
MicroPython sources for the IDs MicroPython itself presents). A pair missing here is reported as an
"unknown USB serial device", never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rig.inventory.spec import BoardKind

# "micropython": the VID:PID that MicroPython firmware itself presents on the chip's own USB, so
#   the board almost certainly runs MicroPython.
# "bridge": a USB-to-UART chip; the MCU behind it may run anything.
# "native-usb": the chip's built-in USB function (ROM or hardware), present whatever the firmware.
Role = Literal["micropython", "bridge", "native-usb"]


@dataclass(frozen=True)
class KnownDevice:
    """One row of the table. ``slug`` names boards generated from it (``cp210x-0001``)."""

    vid: int
    pid: int
    label: str
    slug: str
    kind: BoardKind
    role: Role

    @property
    def likely_micropython(self) -> bool:
        return self.role == "micropython"


KNOWN_DEVICES: tuple[KnownDevice, ...] = (
    # USB-to-UART bridges on ESP32 dev boards (DevKitC, NodeMCU-32S, WROOM/WROVER kits, clones).
    KnownDevice(0x10C4, 0xEA60, "Silicon Labs CP210x bridge", "cp210x", "esp32", "bridge"),
    KnownDevice(0x10C4, 0xEA70, "Silicon Labs CP2105 dual bridge", "cp2105", "esp32", "bridge"),
    KnownDevice(0x1A86, 0x7523, "WCH CH340 bridge", "ch340", "esp32", "bridge"),
    KnownDevice(0x1A86, 0x5523, "WCH CH341 bridge", "ch341", "esp32", "bridge"),
    KnownDevice(0x1A86, 0x55D4, "WCH CH9102 bridge", "ch9102", "esp32", "bridge"),
    # General-purpose bridges: nothing says what is behind them.
    KnownDevice(0x0403, 0x6001, "FTDI FT232R bridge", "ft232r", "generic", "bridge"),
    KnownDevice(0x0403, 0x6010, "FTDI FT2232 bridge", "ft2232", "generic", "bridge"),
    KnownDevice(0x0403, 0x6011, "FTDI FT4232H bridge", "ft4232h", "generic", "bridge"),
    KnownDevice(0x0403, 0x6014, "FTDI FT232H bridge", "ft232h", "generic", "bridge"),
    KnownDevice(0x0403, 0x6015, "FTDI FT-X (FT231X/FT230X) bridge", "ftx", "generic", "bridge"),
    KnownDevice(0x067B, 0x2303, "Prolific PL2303 bridge", "pl2303", "generic", "bridge"),
    # Espressif chips' own USB.
    KnownDevice(
        0x303A,
        0x1001,
        "Espressif USB-Serial/JTAG (ESP32-C3/S3/C6/H2)",
        "esp32-usbjtag",
        "esp32",
        "native-usb",
    ),
    KnownDevice(
        0x303A, 0x0002, "Espressif ESP32-S2 ROM USB (download mode)", "esp32s2-rom", "esp32", "native-usb"
    ),
    # MicroPython's esp32 port on ESP32-S2/S3 uses ESP-IDF's TinyUSB default: 0x4000 | CDC bit.
    # Other ESP-IDF TinyUSB CDC applications share it, but on a MicroPython bench it is MicroPython.
    KnownDevice(
        0x303A,
        0x4001,
        "Espressif TinyUSB CDC (MicroPython on ESP32-S2/S3)",
        "esp32-tinyusb",
        "esp32",
        "micropython",
    ),
    # MicroPython's own VID (f055) and PIDs: stm32 picks one per USB mode; the TinyUSB ports
    # (samd, nrf, mimxrt) default to the CDC-only 9802.
    KnownDevice(0xF055, 0x9800, "MicroPython pyboard (CDC+MSC)", "pyboard", "generic", "micropython"),
    KnownDevice(0xF055, 0x9801, "MicroPython pyboard (CDC+HID)", "pyboard", "generic", "micropython"),
    KnownDevice(0xF055, 0x9802, "MicroPython board (CDC)", "micropython", "generic", "micropython"),
    KnownDevice(0x2E8A, 0x0005, "Raspberry Pi RP2 (Pico) MicroPython", "rp2", "generic", "micropython"),
)

_BY_ID = {(d.vid, d.pid): d for d in KNOWN_DEVICES}


def lookup(vid: int | None, pid: int | None) -> KnownDevice | None:
    """The table row for a VID:PID, or None when either is missing or the pair is not listed."""
    if vid is None or pid is None:
        return None
    return _BY_ID.get((vid, pid))
