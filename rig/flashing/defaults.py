"""What ``rig flash`` does unless told otherwise; importable without esptool (the ``flash`` extra)."""

from __future__ import annotations

# The chip of the bench's boards (a BPI-BIT, an ESP32-WROOM), as esptool names it.
DEFAULT_CHIP = "esp32"
# The ROM bootloader syncs at 115200; the stub then takes the data faster. 460800 is what
# MicroPython's own ESP32 instructions use and what CP210x and CH340 bridges carry reliably.
ROM_BAUD = 115200
DEFAULT_BAUD = 460800
# What to install when esptool is missing.
EXTRA = "pip install 'micropython-mqtt-rig[flash]'"
