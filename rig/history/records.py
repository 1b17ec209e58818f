"""What a writer hands the store: plain data, no database types, so that a writer (the gate,
the plugin, ``rig history import``) needs no session of its own and tests can build runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["gate", "pytest"]
# Who failed: the rig (port gone, broker down, run killed), the firmware, or nobody.
Failure = Literal["infrastructure", "firmware", "none"]


@dataclass(frozen=True)
class FigureIn:
    """One number a test recorded (``fault.wifi.detect_s``, ``boot_to_connected_s``, ...)."""

    name: str
    value: float
    unit: str


@dataclass(frozen=True)
class ResultIn:
    """One test on one board, as its run left it."""

    board: str
    nodeid: str
    outcome: str  # passed, failed, error, skipped, flaky (failed, then passed when rerun)
    failure: Failure
    duration: float = 0.0
    message: str = ""
    started: float | None = None  # wall clock, seconds since the epoch
    figures: tuple[FigureIn, ...] = ()


@dataclass(frozen=True)
class RunIn:
    """One run: a gate over its boards, or one pytest session.

    ``key`` identifies the run across writers: the store keeps one run per key, so writing or
    importing the same run twice adds nothing. Times are seconds since the epoch."""

    key: str
    kind: Kind
    started: float
    ended: float | None = None
    commit: str = ""
    tree_hash: str = ""
    release: str = ""  # the release bundle's hash, "" for a firmware tree
    runtime: str = ""
    host: str = ""
    rig_version: str = ""
    source: str = ""  # the run folder it came from, for a reader who wants the logs
    results: tuple[ResultIn, ...] = field(default=())
