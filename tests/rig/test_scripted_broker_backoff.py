"""The check of the board's waits after refused SUBSCRIBEs (``WaitsBackOff``, scenario
suback-refused-backoff), on times written here: it passes waits that double and start again, and
names each way a board's waits can go wrong."""

from __future__ import annotations

from typing import cast

import pytest

from rig.scripted_broker import ScriptedBroker
from rig.scripted_broker.scenario import Play
from rig.scripted_broker.scenarios import WaitsBackOff

CHECK = WaitsBackOff(growing=3, restarted=4, initial=0.25)


def play(*waits: float, load: float = 0.05) -> Play:
    """A play whose broker saw these waits, refusal #1 first, each from its SUBACK 0x80 to the
    board's close, with what a loaded machine adds to every one."""
    marks: dict[str, float] = {}
    at = 100.0
    for n, wait in enumerate(waits, start=1):
        marks[f"refused-{n}"] = at
        marks[f"closed-{n}"] = at + wait + load
        at += 10
    return Play(cast(ScriptedBroker, None), b"e", b"s", marks=marks)


def test_waits_that_double_and_start_again_pass() -> None:
    CHECK.run(play(0.25, 0.5, 1.0, 0.25))
    CHECK.run(play(0.25, 0.5, 1.0, 0.25, load=0.2))  # the ratios shrink under load, and still pass


@pytest.mark.parametrize(
    ("waits", "load", "cause"),
    [
        ((0.25, 0.25, 0.25, 0.25), 0.05, r"did not grow: wait #2 is 1\.00 times wait #1"),
        ((0.25, 0.5, 0.5, 0.25), 0.05, r"did not grow: wait #3 is 1\.00 times wait #2"),
        ((0.25, 0.5, 1.0, 1.0), 0.05, r"did not start again: wait #4 is 1\.00 times wait #3"),
        # Closed at once, and waits of milliseconds that grow by chance.
        ((0.0, 0.003, 0.008, 0.0), 0.002, r"did not wait after a refused SUBSCRIBE: it closed 0\.002s"),
    ],
)
def test_waits_gone_wrong_are_named(waits: tuple[float, ...], load: float, cause: str) -> None:
    with pytest.raises(AssertionError, match=cause):
        CHECK.run(play(*waits, load=load))
