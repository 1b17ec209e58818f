"""pyserial URL handlers of the lab, found by package name (``rig.board.labgrid`` registers it)."""
