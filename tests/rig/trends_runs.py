"""Five nights in a results store, written through the store's own writer (``Store.write``),
for the trends page's tests: what each test does across them, and what the newest run changed.

- ``STEADY`` passes every night on both boards; its ``boot_to_connected_s`` jumps in the last
  night (a figure past its noise); its ``fault.wifi.detect_s`` wobbles within its noise.
- ``BREAKS`` passes four nights and fails the last (a new failure, with ``BREAK_MESSAGE``).
- ``MENDS`` fails four nights and passes the last (fixed).
- ``WOBBLY`` fails then passes in the last night's retry (newly flaky).
- ``HOSTILE`` has HTML in its name and fails the last night: the page must show it as text.
"""

from __future__ import annotations

from rig.history.records import FigureIn, ResultIn, RunIn
from rig.history.store import Store

STEADY = "tests/hil/test_trend.py::test_steady"
BREAKS = "tests/hil/test_trend.py::test_breaks"
MENDS = "tests/hil/test_trend.py::test_mends"
WOBBLY = "tests/hil/test_trend.py::test_wobbly"
HOSTILE = "tests/hil/test_trend.py::test_x[<script>alert(1)</script><b>bold</b>]"
BREAK_MESSAGE = "broker saw no PUBACK for mid 7"
NIGHTS = 5
DAY = 86400.0
START = 1_796_000_000.0
BOOT = (1.0, 1.1, 0.9, 1.0, 3.0)
DETECT = (2.0, 2.1, 1.9, 2.0, 2.05)
SUITE = (600.0, 610.0, 590.0, 605.0, 602.0)


def night(n: int) -> RunIn:
    last = n == NIGHTS - 1
    started = START + n * DAY
    virtual = [
        ResultIn(
            "virtual",
            STEADY,
            "passed",
            "none",
            figures=(
                FigureIn("boot_to_connected_s", BOOT[n], "s"),
                FigureIn("fault.wifi.detect_s", DETECT[n], "s"),
            ),
        ),
        ResultIn("virtual", BREAKS, "failed", "firmware", message=BREAK_MESSAGE)
        if last
        else ResultIn("virtual", BREAKS, "passed", "none"),
        ResultIn("virtual", MENDS, "passed", "none")
        if last
        else ResultIn("virtual", MENDS, "failed", "firmware", message="no echo"),
        ResultIn("virtual", WOBBLY, "passed", "none"),
        ResultIn("virtual", HOSTILE, "failed" if last else "passed", "firmware" if last else "none"),
    ]
    if last:
        # The gate's retry, stored beside the first attempt: the first failed, the retry passed.
        virtual.insert(3, ResultIn("virtual", WOBBLY, "error", "infrastructure", message="port vanished"))
    usb = [
        ResultIn("usb-1", STEADY, "error", "infrastructure", message="port vanished")
        if n == 2
        else ResultIn("usb-1", STEADY, "passed", "none")
    ]
    return RunIn(
        key=f"gate:night-{n}",
        kind="gate",
        started=started,
        ended=started + SUITE[n],
        results=tuple(virtual + usb),
    )


def write_nights(store: Store) -> None:
    for n in range(NIGHTS):
        assert store.write(night(n))
