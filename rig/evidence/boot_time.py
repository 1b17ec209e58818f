"""Boot to connected: from the rig's reset of a board to the broker receiving its firmware's CONNECT.

This is what a release that grows slower to start shows first, so every run records it, per
reset, in ``run.json`` (``RunRecord.boots``), in each test's JUnit properties and in the report.

The start is the host's wall clock (``time.time()``) just before the rig resets the board:
``Board.soft_reset`` stamps it as it sends Ctrl-D (after a deploy, or to restart the firmware),
``Board.power_cycle`` as it cuts the power (the virtual board's process is killed and started
again, so its start is in the figure). The very first start of the virtual board is not one:
the rig interrupts that boot to read the runtime and deploy, and the deploy's soft reset is the
boot a run's tests run on.

The end is the broker's record of the CONNECT of the board's client id (``rig.broker.records``),
never the console: a firmware that prints ``connected`` without connecting gets no figure. The
console's ``connected`` event is kept beside it (``console_seconds``) as a second witness, so a
person can see the two disagree. Which clock stamps the CONNECT, and how well:

- amqtt: its records plugin stamps each packet with the broker's ``time.time()`` as it receives
  it (``rig.broker.amqtt_plugin``): microseconds, on the host's clock, the same clock as the
  start. ``clock`` is ``broker``.
- mosquitto logs whole seconds only (``log_timestamp`` has no sub-second format in 2.0), too
  coarse for a boot of half a second. The figure then ends when the rig's broker tap read the
  CONNECT line (``rig.evidence.broker_tap``, which stamps each record as it reads it): mosquitto
  writes and flushes the line as it handles the packet, and the tap polls every
  ``POLL_SECONDS`` (20 ms) or reads at once when a test asks. So the figure is late by up to
  one poll period plus the log's write, never early by more than the read itself (the stamp is
  taken just before the read): resolution about 20 ms, biased upwards by 10 ms on average.
  ``clock`` is ``tap``. The broker's own whole second must agree (the CONNECT's second is not
  before the reset's), or the record is not the one.

Both ends are on the host's wall clock: a step of the clock (NTP) during a boot would skew one
figure. Only a CONNECT stamped after the reset counts, so a figure is never zero or negative:
a clock stepped back gives "not measured", not a bogus number.

A CONNECT counts when it is the first of the board's client id that the broker received after
the reset (by its stamp as above). When there is none (the firmware never connected, the broker
gives no records, the test ended first) the record has no ``seconds`` and its ``note`` says why.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from rig.broker.record_log import RecordLog
from rig.broker.records import Connect
from rig.evidence.broker_tap import POLL_SECONDS
from rig.evidence.run_record import BootRecord

# The JUnit properties of a test: the figure of the boot its firmware ran on (or of the reset
# the test made itself), how that boot started, and why there is no figure when there is none.
PROPERTY = "boot_to_connected_s"
RESET_PROPERTY = "boot_reset"
NOTE_PROPERTY = "boot_to_connected_note"
PROPERTIES = (PROPERTY, RESET_PROPERTY, NOTE_PROPERTY)
# The brokers that stamp each CONNECT with a sub-second clock of their own (see the module).
FINE_CLOCK_BROKERS = frozenset({"amqtt"})
CLOCK_BROKER = "broker"
CLOCK_TAP = "tap"
NOT_MEASURED = "not measured"
# How fine each clock is (s): the bound of the error of one figure, for a reader of the numbers.
RESOLUTION_S = {CLOCK_BROKER: 1e-6, CLOCK_TAP: POLL_SECONDS}


@dataclass(frozen=True)
class Reset:
    """How and when (wall clock) the rig reset the board."""

    how: str
    at: float


def measure(
    records: RecordLog,
    reset: Reset,
    client: str,
    *,
    broker_kind: str,
    console_connected_at: float | None = None,
    test: str = "",
) -> BootRecord:
    """Boot to connected for ``reset``: until the broker's first CONNECT of ``client`` after it,
    as ``records`` hold it now (they are not waited on: call this once the firmware was seen
    running, or at the end of a test). ``console_connected_at``: when the console said
    ``connected`` after the reset (wall clock), kept as a second witness."""
    console = _since(reset, console_connected_at)
    boot = BootRecord(reset=reset.how, reset_at=reset.at, client=client, console_seconds=console, test=test)
    if records.unavailable is not None:
        return _not_measured(boot, f"the broker gives no records ({records.unavailable})")
    fine = broker_kind in FINE_CLOCK_BROKERS
    for connect in records.connects(client):
        end = _received(records, connect, fine)
        if end is None or not _after(connect, end, reset, fine):
            continue
        return BootRecord(
            reset=reset.how,
            reset_at=reset.at,
            client=client,
            seconds=round(end - reset.at, 4),
            clock=CLOCK_BROKER if fine else CLOCK_TAP,
            console_seconds=console,
            test=test,
        )
    claim = f"; its console said connected {console:.3f} s after it" if console is not None else ""
    return _not_measured(boot, f"the broker received no CONNECT of {client!r} after the {reset.how}{claim}")


def _received(records: RecordLog, connect: Connect, fine: bool) -> float | None:
    """When the broker received ``connect``: its own stamp when fine, else when the tap read it."""
    return connect.t if fine else records.seen(connect)


def _after(connect: Connect, end: float, reset: Reset, fine: bool) -> bool:
    if fine:
        return end > reset.at
    # Read after the reset, and logged in the reset's second or later: a line the old firmware
    # caused before the reset, read late, carries an earlier second.
    return end > reset.at and connect.t >= math.floor(reset.at)


def _since(reset: Reset, at: float | None) -> float | None:
    return round(at - reset.at, 4) if at is not None and at > reset.at else None


def _not_measured(boot: BootRecord, why: str) -> BootRecord:
    return BootRecord(
        reset=boot.reset,
        reset_at=boot.reset_at,
        client=boot.client,
        console_seconds=boot.console_seconds,
        note=f"{NOT_MEASURED}: {why}",
        test=boot.test,
    )


def properties(boot: BootRecord | None) -> dict[str, str]:
    """A test's JUnit properties for ``boot``: the figure, or the note saying why there is none."""
    if boot is None:
        return {}
    if boot.seconds is None:
        return {RESET_PROPERTY: boot.reset, NOTE_PROPERTY: boot.note}
    return {PROPERTY: f"{boot.seconds:.4f}", RESET_PROPERTY: boot.reset}


def summary(boots: Sequence[BootRecord]) -> str:
    """One line for a board's run in the report: ``3 boots: median 0.412 s (0.398-0.530 s); soft
    reset 0.412 s, power cycle 0.530 s, ...``; the notes of those not measured. "" for none."""
    if not boots:
        return ""
    figures = [b.seconds for b in boots if b.seconds is not None]
    head = f"{len(boots)} boot{'s' if len(boots) != 1 else ''}"
    if figures:
        head += f": median {statistics.median(figures):.3f} s ({min(figures):.3f}-{max(figures):.3f} s)"
    each = [f"{b.reset} {b.seconds:.3f} s" if b.seconds is not None else f"{b.reset} {b.note}" for b in boots]
    return f"{head}; {', '.join(each)}"


def _median(xs: Sequence[float]) -> float:
    s = sorted(xs)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2
