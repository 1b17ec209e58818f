"""Typed errors of the lab (labgrid) layer."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from rig.errors import ConfigError, InfrastructureError
from rig.lock import BoardBusy, BoardLockError


class LabError(InfrastructureError):
    """The coordinator could not be reached or refused what the rig asked (a place that does not
    exist, a resource that never became available). Names the coordinator and the keeper's log."""


class LabgridMissing(ConfigError):
    """labgrid is not installed in this environment (it is the rig's ``lab`` extra)."""

    def __init__(self, what: str) -> None:
        super().__init__(
            "labgrid",
            what,
            "labgrid is not installed here; it lives in its own environment (tox -e labgrid, or "
            "pip install 'labgrid>=25' into a venv of its own: it replaces pyserial by pyserial-labgrid)",
        )


class PlaceBusy(BoardBusy):
    """Another labgrid client held the place for the whole wait: the lab's form of ``BoardBusy``,
    so that the plugin, the gate and the CLI report it exactly as a busy local board.

    ``holder`` is labgrid's "host/user" of the client holding it, ``since`` when the place last
    changed (when it was acquired), ``place`` the place (or, when reserving by tags, the places
    that match).
    """

    def __init__(
        self, board: str, place: str, holder: str, since: float | None, waited: float, log: Path
    ) -> None:
        # BoardBusy's own __init__ describes a local lock file's holder record; a place's holder
        # is a labgrid client, so the message is built here, in the same words.
        self.identity = board
        self.holder = None
        self.place = place
        self.lab_holder = holder
        self.since = since
        self.waited = waited
        self.path = log
        when = datetime.fromtimestamp(since).astimezone().isoformat(timespec="seconds") if since else "?"
        BoardLockError.__init__(
            self,
            f"board {board} is in use by {describe_holder(holder)} (labgrid place {place}, since {when}) "
            f"— waited {waited:g}s",
        )


def describe_holder(acquired: str) -> str:
    """labgrid's "host/user" as a person reads it: "user lab on host bench-pi"."""
    host, _, user = acquired.partition("/")
    return f"user {user or '?'} on host {host or '?'}"
