"""One test's merged timeline: serial lines, MQTT messages and broker log lines on one clock.

``timeline.jsonl`` holds one JSON object per line, appended and flushed as each event happens
(so it is whole up to a kill), each with at least:

- ``t``: wall-clock seconds (float, the rig's clock for every source);
- ``src``: ``"serial"``, ``"mqtt"``, ``"broker"``, ``"rig"`` or ``"wire"``;
- ``text``: a one-line human rendering.

``mqtt`` entries add ``dir`` ("in"/"out"), ``topic``, ``payload`` (printable), ``hex``, ``qos``,
``retain``. ``wire`` entries (``rig.wire``, added when the test ends) carry the decoded packet or
TCP end under ``wire``. ``serial`` entries whose line is a firmware event add ``event`` (the parsed
``@rig`` object). ``timeline.txt`` beside it is the same, one readable line per entry.
Entries are in arrival order, which is time order within one source.
"""

from __future__ import annotations

import datetime
import json
import threading
from pathlib import Path
from typing import IO, Any

SOURCES = ("serial", "mqtt", "broker", "rig", "wire")


class Timeline:
    """Appends entries from any thread. Lifecycle: open on creation, ``close()`` at teardown;
    entries added after close are dropped (a late broker line must not reopen the file)."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / "timeline.jsonl"
        self.text_path = folder / "timeline.txt"
        self._lock = threading.Lock()
        self._json: IO[str] | None = self.path.open("a", encoding="utf-8")
        self._text: IO[str] | None = self.text_path.open("a", encoding="utf-8")

    def add(self, t: float, src: str, text: str, **fields: Any) -> None:
        entry = {"t": t, "src": src, "text": text, **fields}
        stamp = datetime.datetime.fromtimestamp(t).isoformat(timespec="microseconds")
        with self._lock:
            if self._json is None or self._text is None:
                return
            self._json.write(json.dumps(entry, default=str) + "\n")
            self._json.flush()
            self._text.write(f"{stamp} {src:<6} {text}\n")
            self._text.flush()

    def close(self) -> None:
        with self._lock:
            for f in (self._json, self._text):
                if f is not None:
                    f.close()
            self._json = self._text = None


def read_timeline(path: Path) -> list[dict[str, Any]]:
    """The entries of a timeline file, skipping a last line cut short by a kill."""
    entries: list[dict[str, Any]] = []
    if not path.exists():
        return entries
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entries.append(json.loads(line))
        except ValueError:
            continue
    return entries
