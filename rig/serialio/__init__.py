"""The serial side of a board: one owner of the port, its capture, and waits on what it said."""

from rig.serialio.capture import Line, SerialCapture, SerialLog
from rig.serialio.port import BoardPort, ChunkSink

__all__ = ["BoardPort", "ChunkSink", "Line", "SerialCapture", "SerialLog"]
