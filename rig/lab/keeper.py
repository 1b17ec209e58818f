"""The keeper: the one process that talks gRPC to the labgrid coordinator for a run.

``python -m rig.lab.keeper --coordinator HOST:PORT take --place NAME --wait S`` reserves (by tags)
or acquires a place, prints the place and its resources as one JSON line, then holds the place
until its stdin closes, it reads ``release``, or it gets SIGTERM / SIGINT; then it releases the
place (and cancels the reservation) and says so. Its parent, the rig, is never a gRPC client:

- the place is released whatever happens to the rig: a crash or SIGKILL closes the keeper's
  stdin (and ``PR_SET_PDEATHSIG`` sends it SIGTERM), and the keeper releases it then;
- gRPC's fork handlers never meet the rig's own children (brokers, pytest runs), which is why
  labgrid's own tests set ``GRPC_ENABLE_FORK_SUPPORT=0``;
- everything labgrid-specific runs in the environment where labgrid is installed, and the rig
  reads plain JSON.

``places`` prints every place with its state; ``create`` adds places, matches and tags from a
JSON plan. Every line on stdout is one JSON object with an ``event`` key; labgrid's own chatter
goes to stderr (the keeper's log).

labgrid is imported with ``importlib``: it is untyped, and only installed in the lab's own
environment.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import os
import signal
import sys
import threading
import time
from typing import Any

# labgrid's gRPC client forks nothing here, but its library would install fork handlers.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")

DEFAULT_PORT = 20408
# A place's exporter starts ser2net when the place is acquired and publishes its port after.
RESOURCE_WAIT = 15.0
# How often a waiting keeper looks at the place again (the coordinator pushes changes; this
# bounds how late a missed push is noticed).
POLL = 0.2


class KeeperFailed(Exception):
    """Ends the keeper with an ``error`` event (exit 2)."""


class Busy(Exception):
    """The place stayed held for the whole wait (exit 3)."""

    def __init__(self, place: str, holder: str, since: float | None) -> None:
        super().__init__(place)
        self.place = place
        self.holder = holder
        self.since = since


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}, default=str), flush=True)


class Lab:
    """labgrid's client session and protobuf module, imported late."""

    def __init__(self, coordinator: str, loop: asyncio.AbstractEventLoop) -> None:
        try:
            client = importlib.import_module("labgrid.remote.client")
            self.pb2: Any = importlib.import_module("labgrid.remote.generated.labgrid_coordinator_pb2")
            self.grpc: Any = importlib.import_module("grpc")
        except ImportError as e:
            raise KeeperFailed(f"labgrid is not installed in {sys.executable}: {e}") from e
        address = coordinator if ":" in coordinator.rsplit("]", 1)[-1] else f"{coordinator}:{DEFAULT_PORT}"
        self.address = address
        self.session: Any = client.ClientSession(address, loop)
        self.me = f"{self.session.gethostname()}/{self.session.getuser()}"

    async def start(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self.session.start(), timeout)
        except (asyncio.TimeoutError, Exception) as e:
            raise KeeperFailed(f"cannot reach the labgrid coordinator at {self.address}: {e!r}") from e

    async def stop(self) -> None:
        await self.session.stop()
        await self.session.close()

    async def call(self, method: str, request: Any) -> Any:
        try:
            response = await getattr(self.session.stub, method)(request)
            await self.session.sync_with_coordinator()
            return response
        except self.grpc.aio.AioRpcError as e:
            raise Refused(e.code(), e.details()) from e

    def place(self, name: str) -> Any:
        place = self.session.places.get(name)
        if place is None:
            known = ", ".join(sorted(self.session.places)) or "none"
            raise KeeperFailed(f"no place {name!r} at the coordinator {self.address} (places: {known})")
        return place


class Refused(Exception):
    def __init__(self, code: Any, details: str) -> None:
        super().__init__(f"{code}: {details}")
        self.code = code
        self.details = details


def place_record(place: Any) -> dict[str, Any]:
    return {
        "name": place.name,
        "tags": dict(place.tags),
        "acquired": place.acquired,
        "changed": place.changed,
        "reservation": place.reservation,
        "comment": place.comment,
        "matches": sorted(str(m) for m in place.matches),
    }


async def take(lab: Lab, args: argparse.Namespace, stop: asyncio.Event) -> None:
    """Reserve or acquire, report, hold until told to stop, release."""
    deadline = time.monotonic() + args.wait
    token = None
    if args.tags:
        token, name = await reserve(lab, dict(t.split("=", 1) for t in args.tags), deadline, stop)
    else:
        name = args.place
    try:
        await acquire(lab, name, deadline, stop)
        try:
            emit("acquired", place=place_record(lab.place(name)), resources=await resources(lab, name))
            await stop.wait()
        finally:
            await lab.call("ReleasePlace", lab.pb2.ReleasePlaceRequest(placename=name, fromuser=lab.me))
            emit("released", place=name)
    finally:
        if token is not None:
            with contextlib.suppress(Refused):  # expired already: nothing is left to cancel
                await lab.call("CancelReservation", lab.pb2.CancelReservationRequest(token=token))


async def reserve(lab: Lab, tags: dict[str, str], deadline: float, stop: asyncio.Event) -> tuple[str, str]:
    """labgrid's ``reserve --wait``: the coordinator allocates one place whose tags include
    ``tags``, in the order reservations were made; polling also keeps the reservation alive."""
    flt = {"main": lab.pb2.Reservation.Filter(filter=tags)}
    response = await lab.call("CreateReservation", lab.pb2.CreateReservationRequest(filters=flt, prio=0.0))
    token = response.reservation.token
    matching = [p for p in lab.session.places.values() if all(p.tags.get(k) == v for k, v in tags.items())]
    if not matching:
        await lab.call("CancelReservation", lab.pb2.CancelReservationRequest(token=token))
        wanted = " ".join(f"{k}={v}" for k, v in tags.items())
        raise KeeperFailed(f"no place at {lab.address} has the tags {wanted}")
    while True:
        polled = await lab.call("PollReservation", lab.pb2.PollReservationRequest(token=token))
        allocated = list(polled.reservation.allocations.values())  # filter group -> place name
        if allocated:
            return token, allocated[0]
        if stop.is_set():
            await lab.call("CancelReservation", lab.pb2.CancelReservationRequest(token=token))
            raise KeeperFailed("told to stop while waiting for a place")
        if time.monotonic() >= deadline:
            await lab.call("CancelReservation", lab.pb2.CancelReservationRequest(token=token))
            held = [p for p in matching if p.acquired]
            first = min(held, key=lambda p: p.changed) if held else matching[0]
            names = ",".join(sorted(p.name for p in matching))
            raise Busy(
                names, ", ".join(sorted({p.acquired or "a reservation" for p in matching})), first.changed
            )
        await asyncio.sleep(min(POLL * 5, max(0.0, deadline - time.monotonic())))


async def acquire(lab: Lab, name: str, deadline: float, stop: asyncio.Event) -> None:
    while True:
        place = lab.place(name)
        if not place.acquired:
            try:
                await lab.call("AcquirePlace", lab.pb2.AcquirePlaceRequest(placename=name))
                return
            except Refused as e:
                # Taken between our look and our request, or reserved for someone else: wait as
                # for a held place. Anything else (no such place, no resources) is final.
                if e.code not in (
                    lab.grpc.StatusCode.FAILED_PRECONDITION,
                    lab.grpc.StatusCode.PERMISSION_DENIED,
                ):
                    raise KeeperFailed(f"the coordinator refused to give place {name}: {e}") from e
                if "already acquired" not in e.details and "reserved" not in e.details:
                    raise KeeperFailed(f"the coordinator refused to give place {name}: {e}") from e
        if stop.is_set():  # the rig gave up (or died) while waiting: take nothing
            raise KeeperFailed(f"told to stop while waiting for place {name}")
        if time.monotonic() >= deadline:
            place = lab.place(name)
            raise Busy(name, place.acquired or f"a reservation ({place.reservation})", place.changed)
        await asyncio.sleep(min(POLL, max(0.0, deadline - time.monotonic())))


async def resources(lab: Lab, name: str) -> list[dict[str, Any]]:
    """The acquired place's resources, once every serial port has its ser2net port published."""
    deadline = time.monotonic() + RESOURCE_WAIT
    while True:
        place = lab.place(name)
        found: list[dict[str, Any]] = []
        pending: list[str] = []
        for path in place.acquired_resources:
            exporter, group, _cls, resource_name = path
            match = place.getmatch(path)
            entry = lab.session.resources.get(exporter, {}).get(group, {}).get(resource_name)
            shown = "/".join(path)
            if entry is None or not entry.avail:
                pending.append(f"{shown} (not available)")
                continue
            if entry.cls == "NetworkSerialPort" and not entry.args.get("port"):
                pending.append(f"{shown} (no ser2net port yet)")
                continue
            rename = match.rename if match is not None else None
            found.append(
                {"cls": entry.cls, "name": rename or resource_name, "path": shown, "params": entry.args}
            )
        if not pending:
            return found
        if time.monotonic() >= deadline:
            raise KeeperFailed(
                f"place {name}: resources not ready after {RESOURCE_WAIT:g}s: {', '.join(pending)}"
            )
        await asyncio.sleep(POLL)


async def create(lab: Lab, plan: list[dict[str, Any]]) -> None:
    """Add each planned place, its matches and tags; what exists already is left as it is."""
    done = []
    for wanted in plan:
        name = wanted["name"]
        if name not in lab.session.places:
            await lab.call("AddPlace", lab.pb2.AddPlaceRequest(name=name))
        place = lab.place(name)
        for pattern in wanted.get("matches", []):
            if not place.hasmatch(pattern.split("/")):
                await lab.call("AddPlaceMatch", lab.pb2.AddPlaceMatchRequest(placename=name, pattern=pattern))
        tags = wanted.get("tags", {})
        if tags:
            await lab.call("SetPlaceTags", lab.pb2.SetPlaceTagsRequest(placename=name, tags=tags))
        done.append(place_record(lab.place(name)))
    emit("created", places=done)


def watch_stdin(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    """Stop on ``release`` or on EOF: the parent closed the pipe, or died."""

    def read() -> None:
        for line in sys.stdin:
            if line.strip() == "release":
                break
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=read, name="keeper-stdin", daemon=True).start()


async def run(args: argparse.Namespace) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(signum, stop.set)
    lab = Lab(args.coordinator, loop)
    await lab.start(args.connect_timeout)
    try:
        if args.command == "take":
            watch_stdin(loop, stop)
            await take(lab, args, stop)
        elif args.command == "places":
            emit("places", places=[place_record(p) for _, p in sorted(lab.session.places.items())])
        else:
            await create(lab, json.loads(sys.stdin.read()))
    finally:
        await lab.stop()
    return 0


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m rig.lab.keeper")
    parser.add_argument("--coordinator", required=True)
    parser.add_argument("--connect-timeout", type=float, default=10.0)
    sub = parser.add_subparsers(dest="command", required=True)
    taking = sub.add_parser("take")
    which = taking.add_mutually_exclusive_group(required=True)
    which.add_argument("--place")
    which.add_argument("--tag", dest="tags", action="append", metavar="KEY=VALUE")
    taking.add_argument("--wait", type=float, default=60.0)
    sub.add_parser("places")
    sub.add_parser("create")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    try:
        return asyncio.run(run(args))
    except Busy as e:
        emit("busy", place=e.place, holder=e.holder, since=e.since, waited=args.wait)
        return 3
    except (KeeperFailed, Refused) as e:
        emit("error", message=str(e))
        return 2


if __name__ == "__main__":
    sys.exit(main())
