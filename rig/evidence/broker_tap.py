"""Copies one test's share of the broker log into its artifacts and its timeline."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from rig.broker import Broker
from rig.broker.logfile import LogFollower
from rig.evidence.timeline import Timeline

# A log file gives no event to wait on; this is how stale a broker line may be in the timeline.
POLL_SECONDS = 0.02


class BrokerLogTap:
    """Follows the broker's log from now on and keeps the lines that name ``needle`` (the run
    id that every client id of this run carries), stamped on the rig's clock as they are read.

    Lifecycle: starts following at creation; ``close()`` reads what is left, stops, and closes
    ``broker.log`` in the test's folder. A broker without a log (external) gives an empty tap.
    """

    def __init__(self, broker: Broker, needle: str, folder: Path, timeline: Timeline) -> None:
        self.needle = needle
        self.timeline = timeline
        self.path = folder / "broker.log"
        self._follower = LogFollower(broker.log_path, broker.log_mark()) if broker.log_path else None
        self._file = self.path.open("a", encoding="utf-8") if self._follower else None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="broker-log-tap", daemon=True)
        if self._follower is not None:
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            self._drain()

    def _drain(self) -> None:
        if self._follower is None or self._file is None:
            return
        now = time.time()
        for line in self._follower.read_new_lines():
            if self.needle in line:
                self._file.write(line + "\n")
                self._file.flush()
                self.timeline.add(now, "broker", line)

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self._drain()
        if self._file is not None:
            self._file.close()
            self._file = None
