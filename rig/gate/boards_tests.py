"""The tests of several boards, kept out of a board's run and listed for the gate: a pytest plugin.

The gate loads it into each board's pytest (``-p rig.gate.boards_tests
--rig-gate-boards-tests=FILE``). A run bound to one board holds it: a test of several boards
(``@pytest.mark.boards``, ``rig.multiboard``) is no test of that board. So once the run's own
selection is made (``-k``, ``-m`` and the rest of the gate's pytest arguments), the tests that
carry the marker are deselected, and FILE lists them: node id, the argument that selects the
test in another run, and the marker's keywords. The gate then runs them once per group of boards
that can play their roles (``rig.gate.several``), from the list of whichever board run wrote one.

This replaces a ``-m "not boards"`` on the command line, which a ``-m`` among the gate's pytest
arguments would have overridden, and which left no trace of what it took out.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from rig.errors import ConfigError
from rig.gate.groups import BoardsTest
from rig.multiboard.roles import MARKER, read_marker

OPTION = "--rig-gate-boards-tests"
# In each board run's folder; the gate reads the first it finds (rig.gate.several).
FILE = "boards-tests.json"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        OPTION,
        dest="rig_gate_boards_tests",
        default=None,
        help="(rig gate) list the tests of several boards here",
    )


@pytest.hookimpl(trylast=True)  # after -k and -m made the run's selection
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    path = config.getoption("rig_gate_boards_tests")
    if not path:
        return
    several = [item for item in items if item.get_closest_marker(MARKER) is not None]
    if several:
        taken = set(several)
        items[:] = [item for item in items if item not in taken]
        config.hook.pytest_deselected(items=several)
    write_tests(Path(path), [_entry(item) for item in several])


def _entry(item: pytest.Item) -> dict[str, Any]:
    marker = item.get_closest_marker(MARKER)
    assert marker is not None
    _, _, rest = item.nodeid.partition("::")
    return {
        "nodeid": item.nodeid,
        "arg": f"{item.path}::{rest}" if rest else str(item.path),
        "marker": dict(marker.kwargs),
    }


def write_tests(path: Path, entries: Sequence[dict[str, Any]]) -> None:
    # Replaced by a rename: the gate may read it while another worker of the run writes it.
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temp.write_text(json.dumps(list(entries), indent=1, default=list), encoding="utf-8")
    os.replace(temp, path)


def read_tests(path: Path) -> list[BoardsTest]:
    """The tests ``path`` lists; a ``ConfigError`` naming the file and the test for a list that is
    not one, or a marker ``rig.multiboard.roles.read_marker`` refuses."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConfigError(str(path), "tests of several boards", f"unreadable: {e}") from e
    if not isinstance(raw, list):
        raise ConfigError(str(path), "tests of several boards", f"expected a list, got {type(raw).__name__}")
    tests = []
    for entry in raw:
        if not isinstance(entry, dict) or not isinstance(entry.get("marker"), dict):
            raise ConfigError(str(path), "tests of several boards", f"not a test: {entry!r}")
        nodeid = str(entry.get("nodeid", ""))
        try:
            request = read_marker((), entry["marker"])
        except ConfigError as e:
            raise ConfigError(str(path), nodeid, str(e)) from e
        tests.append(BoardsTest(nodeid, str(entry.get("arg", nodeid)), request))
    return tests
