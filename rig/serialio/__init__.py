"""The serial side of a board: one owner of the port, its capture, and waits on what it said."""

import serial

# The rig's pyserial URL handlers (rigtap://, rigrecord://) live here; pyserial finds them by
# package name, so register it before any port is opened.
HANDLER_PACKAGE = "rig.serialio.urlhandlers"
if HANDLER_PACKAGE not in serial.protocol_handler_packages:
    serial.protocol_handler_packages.append(HANDLER_PACKAGE)

from rig.serialio.capture import Line, SerialCapture, SerialLog  # noqa: E402
from rig.serialio.errors import CaptureFailed  # noqa: E402
from rig.serialio.port import BoardPort, ChunkSink  # noqa: E402

__all__ = ["BoardPort", "CaptureFailed", "ChunkSink", "Line", "SerialCapture", "SerialLog"]
