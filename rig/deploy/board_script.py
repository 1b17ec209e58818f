"""The deploy's on-board helpers (``rig/board/mpy/deploy_*.py``), as they go over the wire.

They are kept readable, with comments, in files of their own; every byte of them crosses a
115200-baud console on each deploy, so what is sent has no comment lines, no blank lines and one
space per indentation level (MicroPython reads that the same).
"""

from __future__ import annotations

import functools
from pathlib import Path

import rig.board

SCRIPTS = Path(rig.board.__file__).parent / "mpy"
INDENT = 4  # the helpers' own indentation step


@functools.cache
def board_script(name: str) -> bytes:
    """``rig/board/mpy/<name>.py`` without comment or blank lines, each indentation level one space."""
    path = SCRIPTS / f"{name}.py"
    lines = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        code = line.lstrip(" ")
        if not code or code.startswith("#"):
            continue
        depth, rest = divmod(len(line) - len(code), INDENT)
        if rest:
            raise ValueError(f"{path}:{number}: indentation is not a multiple of {INDENT} spaces")
        lines.append(" " * depth + code)
    return ("\n".join(lines) + "\n").encode()
