"""A labgrid lab on one host, for the rig's own tests: a coordinator and exporters on 127.0.0.1.

Each part is a ``ChildProcess`` (own session, dies with its parent, stopped by PID with its
whole group: an exporter's ser2net children go with it). Start-up is awaited on the part's own
log line, bounded, and a part that exits or stays silent fails naming its log.

As labgrid's own tests do, the parts run with ``GRPC_ENABLE_FORK_SUPPORT=0``: gRPC's fork
handlers can abort a child forked while gRPC runs in the parent.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ruamel.yaml import YAML

from rig.deadline import Deadline
from rig.lab.errors import LabError
from rig.processes import ChildProcess

START_BOUND = 30.0
_LISTENING = re.compile(r"listening on (\S+):(\d+)")


def lab_env() -> dict[str, str]:
    return {**os.environ, "GRPC_ENABLE_FORK_SUPPORT": "0", "PYTHONUNBUFFERED": "1"}


def await_log(
    process: ChildProcess, log_path: Path, pattern: re.Pattern[str], what: str, timeout: float
) -> re.Match[str]:
    """The first match of ``pattern`` in ``log_path``, once the process has written it."""
    deadline = Deadline(timeout)
    while True:
        text = log_path.read_text(errors="replace") if log_path.exists() else ""
        found = pattern.search(text)
        if found is not None:
            return found
        ended = process.poll()
        if ended is not None or deadline.expired:
            tail = "".join(f"\n    {line}" for line in text.splitlines()[-12:]) or "\n    (nothing)"
            why = f"exited with {ended}" if ended is not None else f"not seen within {timeout:g}s"
            raise LabError(f"{what}: {pattern.pattern!r} {why}; last lines:{tail}\n  full log: {log_path}")
        time.sleep(deadline.remaining_or(0.05))


@dataclass
class Coordinator:
    """``labgrid-coordinator`` on 127.0.0.1, on a port the system picked; its places file in ``workdir``."""

    process: ChildProcess
    address: str
    log_path: Path

    @classmethod
    def start(cls, workdir: Path, timeout: float = START_BOUND) -> Coordinator:
        workdir.mkdir(parents=True, exist_ok=True)
        log_path = workdir / "coordinator.log"
        process = ChildProcess.spawn(
            [sys.executable, "-m", "labgrid.remote.coordinator", "--listen", "127.0.0.1:0"],
            name="labgrid coordinator",
            log_path=log_path,
            cwd=workdir,
            env=lab_env(),
        )
        try:
            found = await_log(process, log_path, _LISTENING, "labgrid coordinator", timeout)
        except BaseException:
            process.stop()
            raise
        return cls(process, f"127.0.0.1:{found.group(2)}", log_path)

    def stop(self) -> None:
        self.process.stop()


@dataclass
class Exporter:
    """``labgrid-exporter`` publishing ``groups`` (group -> resource class -> params) as ``name``."""

    process: ChildProcess
    name: str
    log_path: Path

    @classmethod
    def start(
        cls,
        coordinator: str,
        name: str,
        groups: Mapping[str, Mapping[str, Mapping[str, object]]],
        workdir: Path,
        timeout: float = START_BOUND,
    ) -> Exporter:
        workdir.mkdir(parents=True, exist_ok=True)
        config = workdir / f"exporter-{name}.yaml"
        with config.open("w") as f:
            YAML(typ="safe", pure=True).dump(
                {g: {c: dict(p) for c, p in r.items()} for g, r in groups.items()}, f
            )
        log_path = workdir / f"exporter-{name}.log"
        process = ChildProcess.spawn(
            [
                sys.executable,
                "-m",
                "labgrid.remote.exporter",
                "--coordinator",
                coordinator,
                "--name",
                name,
                "--hostname",
                "127.0.0.1",
                str(config),
            ],
            name=f"labgrid exporter {name}",
            log_path=log_path,
            cwd=workdir,
            env=lab_env(),
        )
        try:
            await_log(
                process, log_path, re.compile("connected to coordinator"), f"labgrid exporter {name}", timeout
            )
        except BaseException:
            process.stop()
            raise
        return cls(process, name, log_path)

    def stop(self) -> None:
        self.process.stop()
