"""One test's view of the wire: its share of the session's capture, decoded, and kept.

Lifecycle: made when the test starts (``rig.fixtures.wire``), from the session's capture or
with the reason there is none (``unavailable``: a USB board, no tcpdump, no namespace);
``records()``/``packets()``/``wait_for()`` read what was decoded since the start; ``close()``
writes ``wire.pcap`` (the test's frames, secrets masked over each TCP stream, for Wireshark),
``wire.jsonl`` (one record per line) and a ``wire`` entry per record into the test's timeline.

A check that needs readable packets asks ``readable(what)``: None when it can judge on the
wire, else the reason it cannot (no capture, or TLS: every record is "encrypted"), which the
test then names when it falls back to the broker's records. Never a silent pass.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

from rig.deadline import Deadline
from rig.errors import RigError, WaitTimeout
from rig.wire.capture import WireCapture
from rig.wire.mask import mask_frames
from rig.wire.pcap import write_frames
from rig.wire.records import TcpEnd, WirePacket, WireRecord, to_json

PCAP_FILE = "wire.pcap"
RECORDS_FILE = "wire.jsonl"
# The capture is a file tcpdump writes packet by packet: how often a wait reads it again.
POLL_S = 0.05
TAIL = 12

R = TypeVar("R", WirePacket, TcpEnd)


class WireUnavailable(RigError):
    """The wire cannot witness what a check asked: no capture, or TLS. Names why."""


class WireWitness:
    """See the module docstring."""

    def __init__(
        self,
        capture: WireCapture | None,
        folder: Path,
        *,
        unavailable: str | None = None,
        encrypted: bool = False,
        secrets: Callable[[], Iterable[str]] = tuple,
        add_to_timeline: Callable[[float, str, str, dict[str, object]], None] | None = None,
    ) -> None:
        self.capture = capture
        self.folder = folder
        self.unavailable = unavailable if capture is None else None
        if capture is None and self.unavailable is None:
            self.unavailable = "no capture of the board's link was made"
        self.encrypted = encrypted
        # Asked at close: the board's config (and its passwords) may be made after the start.
        self._secrets = secrets
        self._add = add_to_timeline
        self.started = time.time()
        self._mark = capture.mark() if capture is not None else {}
        self._first = len(capture.records) if capture is not None else 0
        self.pcap_path = folder / PCAP_FILE
        self.records_path = folder / RECORDS_FILE
        self._closed = False

    def readable(self, what: str) -> str | None:
        """None when the wire can witness ``what``; else why not, naming ``what``."""
        if self.unavailable is not None:
            return f"{what}: no wire witness ({self.unavailable})"
        if self.encrypted:
            return f"{what}: the board's link is TLS, so the wire shows only 'encrypted' records"
        return None

    def captured(self, what: str) -> str | None:
        """None when the wire shows when each side sent something (readable or "encrypted");
        else why not, naming ``what``."""
        if self.unavailable is not None:
            return f"{what}: no wire witness ({self.unavailable})"
        return None

    def require(self, what: str) -> None:
        reason = self.readable(what)
        if reason is not None:
            raise WireUnavailable(reason)

    def records(self) -> list[WireRecord]:
        """Every record decoded since the test began, oldest first."""
        if self.capture is None:
            return []
        self.capture.poll()
        return self.capture.records[self._first :]

    def packets(
        self, kind: str | None = None, sender: str | None = None, *, since: float = 0.0
    ) -> list[WirePacket]:
        return [
            r
            for r in self.records()
            if isinstance(r, WirePacket)
            and (kind is None or r.kind == kind)
            and (sender is None or r.sender == sender)
            and r.t >= since
        ]

    def ends(self, *, since: float = 0.0) -> list[TcpEnd]:
        return [r for r in self.records() if isinstance(r, TcpEnd) and r.t >= since]

    def wait_for(self, kind: type[R], what: str, match: Callable[[R], bool], timeout: float) -> R:
        """The first record of ``kind`` since the test began for which ``match`` holds; on
        expiry ``WaitTimeout`` names ``what``, the last records and this test's capture."""
        if kind is WirePacket:
            self.require(what)
        elif self.unavailable is not None:  # a TCP end shows over TLS too
            raise WireUnavailable(f"{what}: no wire witness ({self.unavailable})")
        deadline = Deadline(timeout)
        while True:
            for record in self.records():
                if isinstance(record, kind) and match(record):
                    return record
            if deadline.expired:
                raise WaitTimeout(
                    awaited=f"{what} on the wire",
                    timeout=timeout,
                    last_seen=self.tail(),
                    log_path=self.pcap_path,
                )
            time.sleep(min(POLL_S, deadline.remaining_or(POLL_S)))

    def collect(
        self, match: Callable[[WireRecord], bool], enough: Callable[[list[WireRecord]], bool], timeout: float
    ) -> list[WireRecord]:
        """The records since the test began for which ``match`` holds, once ``enough`` holds of
        them or ``timeout`` expired (then what there was: the caller judges and names it)."""
        deadline = Deadline(timeout)
        while True:
            found = [r for r in self.records() if match(r)]
            if enough(found) or deadline.expired:
                return found
            time.sleep(min(POLL_S, deadline.remaining_or(POLL_S)))

    def tail(self, n: int = TAIL) -> list[str]:
        return [r.describe() for r in self.records()[-n:]]

    def close(self) -> None:
        """Keep the test's share (see the module docstring); idempotent."""
        if self._closed or self.capture is None:
            self._closed = True
            return
        self._closed = True
        records = self.records()
        secrets = sorted({s.encode() for s in self._secrets() if s}, key=len, reverse=True)
        # Over each TCP stream, not frame by frame: a secret may lie across segments (rig.wire.mask).
        write_frames(self.pcap_path, mask_frames(self.capture.frames_since(self._mark), secrets))
        with self.records_path.open("w", encoding="utf-8") as f:
            for record in records:
                f.write(json.dumps(to_json(record)) + "\n")
        if self._add is not None:
            for record in records:
                self._add(record.t, "wire", record.describe(), to_json(record))
