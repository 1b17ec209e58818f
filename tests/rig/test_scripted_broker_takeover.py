"""The check of the board's waits after short connections (``TakeoverWaits``, scenario
taken-over-backoff), on times written here: it passes a board that connects again at once, then
waits longer each time, then at once again after a connection that lasted, also under load, and
names each way those waits can go wrong."""

from __future__ import annotations

from typing import cast

import pytest

from rig.scripted_broker import ScriptedBroker
from rig.scripted_broker.scenario import Play
from rig.scripted_broker.scenarios import TakeoverWaits

CHECK = TakeoverWaits(
    at_once=((0, "lasted"), (1, "first short"), (4, "lasted"), (5, "first short")),
    row=(2, 3),
    initial=0.25,
)


def play(*waits: float, load: float = 0.1) -> Play:
    """A play whose broker saw these waits, after close #0 first, each from its close to the
    board's next CONNECT, with what the board's loop turn and a loaded machine add to each."""
    marks: dict[str, float] = {}
    at = 100.0
    for n, wait in enumerate(waits):
        marks[f"closed-{n}"] = at
        marks[f"connect-{n}"] = at + wait + load
        at += 10
    return Play(cast(ScriptedBroker, None), b"e", b"s", marks=marks)


def test_at_once_then_waits_that_double_then_at_once_again_pass() -> None:
    CHECK.run(play(0, 0, 0.25, 0.5, 0, 0))
    CHECK.run(play(0, 0, 0.25, 0.5, 0, 0, load=0.5))  # the ratios shrink under load, and still pass


@pytest.mark.parametrize(
    ("waits", "cause"),
    [
        # The take-over storm: connects again at once every time.
        ((0, 0, 0, 0, 0, 0), r"did not wait after its second connection in a row lost soon.*take-over storm"),
        # The row never starts again after a connection that lasted.
        ((0.25, 0.5, 0.5, 0.5, 0.5, 0.5), r"did not connect again at once after close #1 \(first short\)"),
        ((0, 0, 0.25, 0.5, 0.5, 0.5), r"did not connect again at once after close #4 \(lasted\)"),
        # The same wait after every short connection.
        ((0, 0, 0.25, 0.25, 0, 0), r"did not grow: the wait after close #3 is 1\.00 times"),
    ],
)
def test_waits_gone_wrong_are_named(waits: tuple[float, ...], cause: str) -> None:
    with pytest.raises(AssertionError, match=cause):
        CHECK.run(play(*waits))
