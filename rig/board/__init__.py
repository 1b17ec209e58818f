"""Boards: how one is reached (a transport) and how it is driven (``Board``)."""

from rig.board.board import Board
from rig.board.transport import BoardTransport
from rig.board.virtual import VirtualBoard

__all__ = ["Board", "BoardTransport", "VirtualBoard"]
