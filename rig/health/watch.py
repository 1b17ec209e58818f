"""One test's health: the checks every HIL test gets, over that test's share of the console."""

from __future__ import annotations

from pathlib import Path

from rig.health.console_secrets import check_secrets
from rig.health.failures import HealthFailure
from rig.health.heap import HeapSample, samples_from
from rig.health.reboots import check_reboots
from rig.serial_events import parse_event
from rig.serialio.capture import SerialCapture


class HealthWatch:
    """Watches the board's console from capture line ``start`` on (a test's first line).

    Lifecycle: made when the test starts; ``findings()`` at its end returns what went wrong
    (an unrequested reboot, a secret printed), each a ``HealthFailure`` naming the cause, and
    ``heap()`` the heap samples the firmware reported meanwhile. It reads the capture only: it
    changes nothing on the board.
    """

    def __init__(self, capture: SerialCapture, start: int, log_path: Path | None) -> None:
        self.capture = capture
        self.start = start
        self.log_path = log_path

    def findings(self) -> list[HealthFailure]:
        found: list[HealthFailure] = []
        for check in (self._reboots, self._secrets):
            try:
                check()
            except HealthFailure as e:
                found.append(e)
        return found

    def _reboots(self) -> None:
        check_reboots(self.capture.lines(self.start), self.log_path)

    def _secrets(self) -> None:
        check_secrets(self.capture.secret_sightings(self.start), self.log_path)

    def heap(self) -> list[HeapSample]:
        events = []
        for line in self.capture.lines(self.start):
            event = parse_event(line.text)
            if event is not None:
                event["t"] = line.t
                events.append(event)
        return samples_from(events)
