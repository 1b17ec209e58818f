"""The lines a capture keeps: their texts in one list, their arrival times as runs.

A flooding board sends hundreds of thousands of lines a second, and the capture keeps up to
``MEMORY_BYTES`` of them. Kept as ``Line`` tuples, each would be an object the cyclic garbage
collector visits on every full collection (a tuple subclass is never untracked), which cost the
reader thread more than splitting and logging together. Kept as text (a ``str`` is not tracked)
with one ``(index, t)`` per run of lines that arrived together, they cost the collector nothing;
``Line`` tuples are made only for the lines a reader asks for (``Span.lines``).
"""

from __future__ import annotations

import itertools
import math
from bisect import bisect_left, bisect_right
from typing import NamedTuple, cast

from rig.serialio.lines import Line, stamp

# What a kept line costs besides its text: its str object's header and its slot in the list.
LINE_OVERHEAD = 64


class Span(NamedTuple):
    """Kept lines ``first``, ``first + 1``... (``texts``), with the runs of arrival times that
    cover them: ``(index, t)``, each run going on to the next one's index. Taken under the
    capture's lock; turned into ``Line`` tuples (``lines``) or log text (``logged``) outside it."""

    first: int
    texts: list[str]
    runs: list[tuple[int, float]]

    def _segments(self) -> list[tuple[int, int, float]]:
        """``(lo, hi, t)``: the lines ``lo`` to ``hi - 1`` arrived at ``t``."""
        if not self.texts:
            return []
        end = self.first + len(self.texts)
        bounds = [max(index, self.first) for index, _ in self.runs[1:]] + [end]
        return [(max(index, self.first), hi, t) for (index, t), hi in zip(self.runs, bounds, strict=True)]

    def line(self, index: int) -> Line:
        """The line ``index``, which must be in the span."""
        run = bisect_right(self.runs, (index, math.inf)) - 1
        return Line(index, self.runs[run][1], self.texts[index - self.first])

    def lines(self) -> list[Line]:
        out: list[Line] = []
        for lo, hi, t in self._segments():
            rows = zip(range(lo, hi), itertools.repeat(t), self.texts[lo - self.first : hi - self.first])
            # tuple.__new__ in map: a Line per row with no Python frame per line.
            out += cast(list[Line], map(tuple.__new__, itertools.repeat(Line), rows))
        return out

    def logged(self) -> str:
        """The lines as a log file has them (``format_line`` of each, then a newline), in a few
        joins: the stamp is made once per run."""
        parts = []
        for lo, hi, t in self._segments():
            mark = stamp(t)
            parts.append(f"{mark} " + f"\n{mark} ".join(self.texts[lo - self.first : hi - self.first]) + "\n")
        return "".join(parts)


class LineStore:
    """The kept lines of one capture. Not thread-safe: the capture calls it under its lock.

    Indexes go on counting from the first line ever added; ``forget`` drops the oldest lines
    (``first`` moves on) and never renumbers the others.
    """

    def __init__(self) -> None:
        self.first = 0  # the index of texts[0]: the lines before it were forgotten
        self.texts: list[str] = []
        self.kept = 0  # the texts' lengths, plus LINE_OVERHEAD each
        self._starts: list[int] = []  # the first index of each run of one arrival time...
        self._times: list[float] = []  # ...and that time

    @property
    def end(self) -> int:
        """The index the next line will get."""
        return self.first + len(self.texts)

    def add(self, texts: list[str], t_first: float, t_rest: float) -> int:
        """Keep ``texts``, the first arriving at ``t_first`` and the others at ``t_rest``;
        return the index of the first."""
        first = self.end
        self.texts += texts
        self._run(first, t_first)
        if len(texts) > 1:
            self._run(first + 1, t_rest)
        self.kept += sum(map(len, texts)) + LINE_OVERHEAD * len(texts)
        return first

    def _run(self, index: int, t: float) -> None:
        if not self._times or self._times[-1] != t:
            self._starts.append(index)
            self._times.append(t)

    def forget(self, budget: int) -> None:
        """Drop the oldest lines until what is kept costs at most ``budget``."""
        if self.kept <= budget or not self.texts:
            return
        # As many lines as the excess holds at the average cost, counted in one C-level sum;
        # then line by line for the few that an uneven mix of lengths leaves.
        dropped = min(len(self.texts), math.ceil((self.kept - budget) * len(self.texts) / self.kept))
        kept = self.kept - sum(map(len, self.texts[:dropped])) - LINE_OVERHEAD * dropped
        while kept > budget and dropped < len(self.texts):
            kept -= len(self.texts[dropped]) + LINE_OVERHEAD
            dropped += 1
        del self.texts[:dropped]
        self.first += dropped
        self.kept = kept
        covering = max(bisect_right(self._starts, self.first) - 1, 0)
        del self._starts[:covering]
        del self._times[:covering]

    def span(self, start: int, end: int | None = None) -> Span:
        """The kept lines from ``start`` (or the oldest kept, if ``start`` was forgotten) up to
        ``end`` (default: all), with their runs."""
        lo = max(start, self.first)
        hi = self.end if end is None else max(lo, min(end, self.end))
        if lo >= hi:
            return Span(lo, [], [])
        runs = slice(bisect_right(self._starts, lo) - 1, bisect_left(self._starts, hi))
        return Span(
            lo,
            self.texts[lo - self.first : hi - self.first],
            list(zip(self._starts[runs], self._times[runs], strict=True)),
        )


class LineBatch(NamedTuple):
    """What one chunk completed, for the capture's batch listeners (the per-test logs):
    ``span``, and ``text``, the same lines as a log file gets them, made once for all logs."""

    span: Span
    text: str

    @property
    def lines(self) -> list[Line]:
        return self.span.lines()
