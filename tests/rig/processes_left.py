"""Finding processes a test left running, by a path only that test uses (its temporary folder)
on their command line: what a test's own handles cannot see, such as a grandchild."""

from __future__ import annotations

import os
from pathlib import Path

from rig.processes import is_running


def processes_naming(text: str) -> dict[int, str]:
    """PID -> command line of the running processes (zombies left out) whose command line
    contains ``text``; this process itself is never one of them."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # gone meanwhile, or not ours to look at
        if text in cmdline and is_running(int(entry.name)):
            found[int(entry.name)] = cmdline
    return found
