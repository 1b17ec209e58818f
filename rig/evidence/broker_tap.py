"""Copies one test's share of the broker's account into its artifacts and its timeline: the raw
log lines, and the broker records (``rig.broker.records``) that tests judge on."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import IO

from rig.broker import Broker
from rig.broker.logfile import LogFollower
from rig.broker.record_log import RecordLog
from rig.broker.record_source import RecordFollower
from rig.broker.records import BrokerRecord, Connack, to_json
from rig.evidence.timeline import Timeline

# A log file gives no event to wait on; this is how stale a broker line may be in the timeline.
POLL_SECONDS = 0.02
RECORDS_FILE = "broker_records.jsonl"


class BrokerLogTap:
    """Follows the broker's log and records from now on and keeps those that name ``needle``
    (the run id that every client id of this run carries), plus the broker's own start and
    stop, stamped on the rig's clock as they are read.

    Lifecycle: starts following at creation; ``close()`` reads what is left, stops, and closes
    ``broker.log`` and ``broker_records.jsonl`` in the test's folder. ``records`` is the
    ``RecordLog`` tests wait on and query. A broker without a log (external) gives an empty tap
    whose ``records`` say why they are unavailable.
    """

    def __init__(
        self, broker: Broker, needle: str, folder: Path, timeline: Timeline, *, also: tuple[str, ...] = ()
    ) -> None:
        """``also``: further client ids to keep, those that do not carry ``needle`` (a firmware
        with a fixed client id, as the tutorial's ``umqtt_client``)."""
        self.needle = needle
        self.needles = (needle, *also)
        self.timeline = timeline
        self.path = folder / "broker.log"
        self.records_path = folder / RECORDS_FILE
        self._follower = LogFollower(broker.log_path, broker.log_mark()) if broker.log_path else None
        self._file = self.path.open("a", encoding="utf-8") if self._follower else None
        self._lock = threading.Lock()
        self._records_follower: RecordFollower | None = broker.record_follower()
        self.records = RecordLog(
            self.records_path,
            self._records_follower.path if self._records_follower else None,
            broker.records_unavailable,
            catch_up=self._drain,
        )
        self._records_file: IO[str] | None = (
            self.records_path.open("a", encoding="utf-8") if self._records_follower else None
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="broker-log-tap", daemon=True)
        if self._follower is not None or self._records_follower is not None:
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            self._drain()

    def _drain(self) -> None:
        # The reader thread and close() may both drain: one at a time, so nothing is read twice.
        with self._lock:
            self._drain_log()
            self._drain_records()

    def _drain_log(self) -> None:
        if self._follower is None or self._file is None:
            return
        now = time.time()
        for line in self._follower.read_new_lines():
            if any(n in line for n in self.needles):
                self._file.write(line + "\n")
                self._file.flush()
                self.timeline.add(now, "broker", line)

    def _drain_records(self) -> None:
        if self._records_follower is None or self._records_file is None:
            return
        now = time.time()
        try:
            fresh = self._records_follower.read_new()
        except Exception as e:  # a bad records file: waits fail at once, naming it
            self.records.fail(e)
            self._records_follower = None
            return
        mine = [r for r in fresh if self._ours(r)]
        for record in mine:
            fields = to_json(record)
            self._records_file.write(json.dumps({**fields, "seen": now}) + "\n")
            self.timeline.add(now, "broker", f"record: {record.describe()}", record=fields)
        self._records_file.flush()
        self.records.add(mine, seen=now)

    def _ours(self, record: BrokerRecord) -> bool:
        # A refused login carries no client id (mosquitto names the address: it refuses before it
        # keeps the id); on the run's own broker every refusal is one of the run's clients.
        refused = isinstance(record, Connack) and record.return_code != 0
        return not record.client or any(n in record.client for n in self.needles) or refused

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self._drain()
        with self._lock:
            for f in (self._file, self._records_file):
                if f is not None:
                    f.close()
            self._file = self._records_file = None
