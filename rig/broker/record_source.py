"""Reading a broker's records as the broker writes them: from mosquitto's log, or from the JSON
lines amqtt's plugin writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol

from rig.broker.logfile import LogFile, LogFollower
from rig.broker.mosquitto_records import MosquittoRecordParser, runs_in
from rig.broker.records import BadRecord, BrokerRecord, from_json


class RecordFollower(Protocol):
    """Hands out the records written since its last read, oldest first.

    ``path`` is the file they come from: where a person finds the broker's own account.
    """

    @property
    def path(self) -> Path: ...

    def read_new(self) -> list[BrokerRecord]: ...


class MosquittoRecordFollower:
    """Follows mosquitto's log from byte ``offset`` and parses it into records, each stamped
    with the run of the broker that wrote it: the runs the log held before ``offset`` are
    counted once, here, and the parser counts on from there."""

    def __init__(self, log_path: Path, offset: int) -> None:
        self._path = log_path
        before, start = LogFile(log_path).lines_before(offset)
        self._lines = LogFollower(log_path, start)
        self._parser = MosquittoRecordParser(runs_in(before))

    @property
    def path(self) -> Path:
        return self._path

    def read_new(self) -> list[BrokerRecord]:
        return self._parser.feed(self._lines.read_new_lines())


class JsonRecordFollower:
    """Follows a JSON-lines file of records (``rig.broker.records.to_json`` per line), whose
    writer stamped each with its run (amqtt's plugin).

    A line that is not a record is not skipped silently: it raises ``BadRecord`` naming the file,
    since a verdict on a partial account would be wrong.
    """

    def __init__(self, path: Path, offset: int) -> None:
        self._path = path
        self._lines = LogFollower(path, offset)

    @property
    def path(self) -> Path:
        return self._path

    def read_new(self) -> list[BrokerRecord]:
        records = []
        for line in self._lines.read_new_lines():
            if not line.strip():
                continue
            try:
                records.append(from_json(json.loads(line)))
            except (ValueError, BadRecord) as e:
                raise BadRecord(f"{self._path}: {e}") from e
        return records


def file_mark(path: Path) -> int:
    """The current end of ``path``: a follower created there sees only what comes next."""
    return LogFile(path).size()
