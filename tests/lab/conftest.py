"""A labgrid lab on loopback for the tests of ``rig.lab``: a coordinator, virtual boards, and an
exporter that shares the boards' ptys as ``RawSerialPort`` through ser2net.

These tests run in their own environment (``tox -e labgrid``): labgrid installs
``pyserial-labgrid`` over pyserial, so it never goes into the default one. The default run
(``pytest`` with ``testpaths = tests``) does not collect this folder: it is collected only when
it is named on the command line (``pytest tests/lab``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from rig.board.virtual import VirtualBoard
from rig.lab.client import create_places
from rig.lab.testing import Coordinator, Exporter
from rig.processes import is_running
from tests.rig.processes_left import processes_naming

HERE = Path(__file__).resolve().parent
EXPORTER = "bench-pi"
PLACES = ("lab1", "lab2")
# The place with a power switch: labgrid's NetworkPowerPort (model simplerest) in front of the
# virtual board's power. The other has none, as most bench boards.
POWERED = "lab1"


class Relay(ThreadingHTTPServer):
    """A network power switch on 127.0.0.1, the kind labgrid's ``simplerest`` model drives:
    ``GET /relay/<board>/<0|1>``. Off cuts the virtual board's power (its supervisor kills
    MicroPython and boots it again: the unix port has no "stay off"); on is then a no-op."""

    def __init__(self, boards: dict[str, VirtualBoard]) -> None:
        self.boards = boards
        self.switched: list[str] = []
        super().__init__(("127.0.0.1", 0), _RelayHandler)
        self.thread = threading.Thread(target=self.serve_forever, name="relay", daemon=True)
        self.thread.start()

    def url(self, board: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/relay/{board}/{{value}}"

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self.thread.join(5)


class _RelayHandler(BaseHTTPRequestHandler):
    server: Relay

    def do_GET(self) -> None:
        parts = self.path.strip("/").split("/")  # relay, board[, value]
        board = parts[1] if len(parts) > 1 else ""
        value = parts[2] if len(parts) > 2 else ""
        if parts[0] != "relay" or board not in self.server.boards:
            self.send_error(404)
            return
        if value == "0":
            self.server.boards[board].power_cycle()
        self.server.switched.append(f"{board}={value or '?'}")
        body = b"1"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # the test reads ``switched``


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    asked = [Path(str(arg).split("::")[0]).resolve() for arg in config.args]
    if any(p == HERE or HERE in p.parents for p in asked):
        return None
    return True  # the default run: this folder is the labgrid environment's


@dataclass
class Lab:
    """The running lab: where its coordinator listens, its boards and every PID it started."""

    coordinator: Coordinator
    exporter: Exporter
    boards: dict[str, VirtualBoard]
    relay: Relay
    workdir: Path
    pids: dict[str, list[int]] = field(default_factory=dict)

    def inventory(self, path: Path) -> Path:
        """An inventory with a board per place, and one reserved by tags."""
        entries = "".join(f"  - name: {name}\n    labgrid: {{place: {name}}}\n" for name in self.boards)
        path.write_text(
            "defaults:\n"
            "  kind: labgrid\n"
            f"  labgrid: {{coordinator: '{self.coordinator.address}'}}\n"
            # The virtual boards share this machine's network (no namespace of their own):
            # the broker listens on, and the boards reach it at, loopback.
            "  network: {broker_host: 127.0.0.1}\n"
            "boards:\n"
            f"{entries}"
            "  - name: any-lab\n    labgrid: {tags: [lab=loop]}\n"
        )
        return path


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                stat = (entry / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    pytest.importorskip(
        "labgrid", reason="labgrid is installed in the labgrid environment only (tox -e labgrid)"
    )
    if shutil.which("ser2net") is None:
        pytest.skip(
            "ser2net is not installed (apt-get install ser2net): the exporter shares ports through it"
        )
    work = tmp_path_factory.mktemp("lab")
    started: list[Coordinator | Exporter | VirtualBoard | Relay] = []
    try:
        coordinator = Coordinator.start(work / "coordinator")
        started.append(coordinator)
        boards = {}
        for name in PLACES:
            # No network namespace: the board must reach the run's broker on this loopback.
            board = VirtualBoard(name, work / f"flash-{name}", network=None)
            board.start()
            started.append(board)
            boards[name] = board
        relay = Relay(boards)
        started.append(relay)
        groups: dict[str, dict[str, dict[str, object]]] = {
            name: {"RawSerialPort": {"port": b.port_url, "speed": 115200}} for name, b in boards.items()
        }
        groups[POWERED]["NetworkPowerPort"] = {"model": "simplerest", "host": relay.url(POWERED), "index": 0}
        exporter = Exporter.start(coordinator.address, EXPORTER, groups, work / "exporter")
        started.append(exporter)
        plan = [
            {"name": name, "matches": [f"{EXPORTER}/{name}/*"], "tags": {"lab": "loop", "slot": name}}
            for name in boards
        ]
        create_places(coordinator.address, plan, work / "create-places.log")
        lab = Lab(coordinator, exporter, boards, relay, work)
        lab.pids = {
            "coordinator": [coordinator.process.pid],
            "exporter": [exporter.process.pid],
            "boards": [pid for b in boards.values() for pid in b.process_ids()],
        }
        yield lab
        # ser2net runs only while a place is acquired: any left now is a place left held.
        lab.pids["ser2net"] = _children(exporter.process.pid)
    finally:
        errors = []
        for part in reversed(started):
            try:
                part.stop()
            except Exception as e:  # stop every part; the first failure fails the session
                errors.append(e)
        if errors:
            raise errors[0]
    left = {role: [p for p in pids if is_running(p)] for role, pids in lab.pids.items()}
    # And nothing else that talked to this coordinator: a keeper, a labgrid client.
    left["naming the coordinator"] = sorted(processes_naming(coordinator.address))
    assert not any(left.values()), f"processes left after the lab stopped: {left}"


@pytest.fixture
def lab_env() -> dict[str, str]:
    """The environment of a run on the lab: a busy place is waited for a short, known time.
    Without ``$CI``: the test judges its inner run's outcomes itself, and a place without a
    power switch skips the power tests on purpose, which CI's skip policy (rig.skip_policy)
    would count against it."""
    env = {**os.environ, "GRPC_ENABLE_FORK_SUPPORT": "0", "RIG_LOCK_TIMEOUT": "3"}
    env.pop("CI", None)
    return env
