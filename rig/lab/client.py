"""The rig's side of the keeper (``rig.lab.keeper``): take a place, hold it, give it back.

The rig never speaks gRPC itself: it starts the keeper, reads its JSON lines, and closes the
keeper's stdin to release. A rig that dies any way at all closes that pipe too, so the place is
released after a crash, a Ctrl-C or a SIGKILL as after a clean end.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import queue
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

from rig.deadline import Deadline
from rig.inventory.spec import LabgridSpec
from rig.lab.errors import LabError, LabgridMissing, PlaceBusy
from rig.lab.places import AcquiredPlace, PlaceResource, PlaceState
from rig.processes import ChildProcess

# Connecting to the coordinator, and an exporter starting ser2net for an acquired place (the
# keeper's own bounds are 10 s and 15 s): what a take may last beyond its wait for the place.
TAKE_MARGIN = 30.0
# Releasing is one request and one reply on loopback or a LAN.
RELEASE_BOUND = 10.0
# How much of the keeper's log an error shows.
LOG_TAIL = 12


def require_labgrid() -> None:
    if importlib.util.find_spec("labgrid") is None:
        raise LabgridMissing(sys.executable)


class _Keeper:
    """One keeper process and its stream of events."""

    def __init__(self, args: list[str], coordinator: str, log_path: Path, what: str) -> None:
        require_labgrid()
        self.coordinator = coordinator
        self.log_path = log_path
        self.what = what
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        with log_path.open("ab") as log:
            self.process = ChildProcess.spawn(
                [sys.executable, "-m", "rig.lab.keeper", "--coordinator", coordinator, *args],
                name=f"labgrid keeper ({what})",
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        stdout = self.process.popen.stdout
        assert stdout is not None
        threading.Thread(target=self._read, args=(stdout,), name="lab-keeper", daemon=True).start()

    def _read(self, stdout: IO[str]) -> None:
        for line in stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue  # labgrid printing on stdout: its log has the context
            if isinstance(event, dict) and "event" in event:
                self._events.put(event)
        self._events.put(None)

    def next_event(self, deadline: Deadline, awaited: str) -> dict[str, Any]:
        try:
            event = self._events.get(timeout=deadline.remaining_or(3600.0))
        except queue.Empty:
            raise LabError(
                f"timed out after {deadline.timeout:g}s waiting for labgrid to {awaited} "
                f"(coordinator {self.coordinator}){self.tail()}"
            ) from None
        if event is None:
            code = self.process.stop(RELEASE_BOUND)
            raise LabError(
                f"the labgrid keeper ended (exit {code}) before it could {awaited} "
                f"(coordinator {self.coordinator}){self.tail()}"
            )
        return event

    def send(self, line: str | None) -> None:
        """Write ``line`` to the keeper, then close its stdin when ``line`` is None."""
        stdin = self.process.popen.stdin
        if stdin is None or stdin.closed:
            return
        with contextlib.suppress(BrokenPipeError, OSError):
            if line is not None:
                stdin.write(line + "\n")
                stdin.flush()
            else:
                stdin.close()

    def tail(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()[-LOG_TAIL:]
        except OSError:
            lines = []
        shown = "".join(f"\n    {line}" for line in lines) or "\n    (nothing)"
        return f"\n  last {len(lines)} lines of its log:{shown}\n  full log: {self.log_path}"


class PlaceKeeper:
    """Holds one labgrid place for this process.

    Lifecycle: ``take(wait)`` reserves (by tags) or acquires (by name) the place, waiting at most
    ``wait`` seconds while another client holds it, and returns it with its resources (raises
    ``PlaceBusy`` naming the holder, ``LabError``, ``LabgridMissing``); ``release()`` gives it back
    and raises if the keeper could not say it did. ``release`` is idempotent. If this process dies
    instead, the keeper releases the place on its own.
    """

    def __init__(self, board: str, coordinator: str, labgrid: LabgridSpec, log_path: Path) -> None:
        self.board = board
        self.coordinator = coordinator
        self.labgrid = labgrid
        self.log_path = log_path
        self.place: AcquiredPlace | None = None
        self._keeper: _Keeper | None = None

    @property
    def pid(self) -> int | None:
        return self._keeper.process.pid if self._keeper is not None else None

    def take(self, wait: float) -> AcquiredPlace:
        spec = self.labgrid
        which = (
            ["--place", spec.place]
            if spec.place
            else [a for k, v in spec.tags for a in ("--tag", f"{k}={v}")]
        )
        keeper = _Keeper(["take", *which, "--wait", f"{wait:g}"], self.coordinator, self.log_path, self.board)
        self._keeper = keeper
        try:
            event = keeper.next_event(Deadline(wait + TAKE_MARGIN), f"give {spec.describe()}")
            kind = event["event"]
            if kind == "busy":
                since = event.get("since")
                raise PlaceBusy(
                    self.board,
                    str(event.get("place")),
                    str(event.get("holder")),
                    float(since) if isinstance(since, int | float) else None,
                    wait,
                    self.log_path,
                )
            if kind != "acquired":
                raise LabError(
                    f"labgrid could not give {spec.describe()}: {event.get('message', event)}{keeper.tail()}"
                )
            self.place = AcquiredPlace(
                PlaceState.parse(event["place"]),
                tuple(PlaceResource.parse(r) for r in event.get("resources", [])),
            )
            return self.place
        except BaseException:
            self._stop()
            raise

    def release(self) -> None:
        keeper = self._keeper
        if keeper is None:
            return
        place = self.place
        try:
            keeper.send("release")
            keeper.send(None)
            if place is not None:
                event = keeper.next_event(Deadline(RELEASE_BOUND), f"release place {place.name}")
                if event["event"] != "released":
                    raise LabError(
                        f"place {place.name} may still be held by this host: {event.get('message', event)}"
                        f"{keeper.tail()}"
                    )
        finally:
            self._stop()

    def _stop(self) -> None:
        keeper, self._keeper = self._keeper, None
        self.place = None
        if keeper is not None:
            keeper.send(None)
            keeper.process.stop(RELEASE_BOUND)


def list_places(coordinator: str, log_path: Path, timeout: float = 15.0) -> list[PlaceState]:
    """Every place at ``coordinator`` with its state."""
    keeper = _Keeper(["places"], coordinator, log_path, "list places")
    try:
        event = keeper.next_event(Deadline(timeout), "list its places")
        if event["event"] != "places":
            raise LabError(f"labgrid could not list places: {event.get('message', event)}{keeper.tail()}")
        return [PlaceState.parse(p) for p in event["places"]]
    finally:
        keeper.process.stop(RELEASE_BOUND)


def create_places(
    coordinator: str, plan: list[dict[str, Any]], log_path: Path, timeout: float = 30.0
) -> list[PlaceState]:
    """Add the places of ``plan`` (name, matches, tags) that are missing; returns them all."""
    keeper = _Keeper(["create"], coordinator, log_path, "create places")
    try:
        keeper.send(json.dumps(plan))
        keeper.send(None)
        event = keeper.next_event(Deadline(timeout), "create the places")
        if event["event"] != "created":
            raise LabError(
                f"labgrid could not create the places: {event.get('message', event)}{keeper.tail()}"
            )
        return [PlaceState.parse(p) for p in event["places"]]
    finally:
        keeper.process.stop(RELEASE_BOUND)
