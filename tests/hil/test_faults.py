"""Faults a board meets: it detects each, the broker publishes its will when it lost the board,
the board reconnects (and subscribes again if its session was lost), the echo loop resumes, and
it never reboots. Times to detect and to resume go into each test's properties.

A keepalive of 2 s and a socket timeout of 2 s keep each drill to seconds: the firmware detects
a silent link after 1.5 keepalives (3 s), and gives up a connect or read after the timeout.
A board power cut is ``test_disconnect.py::test_power_cut_fires_the_will``; a broker restart,
``test_session.py::test_broker_restart_loses_session_and_firmware_resubscribes``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from rig.broker.record_log import RecordLog
from rig.faults import Drill, FaultTimes
from rig.fixtures.faults import Faults
from tests.hil.witnesses_agree import assert_console_agrees_with_broker

pytestmark = [
    pytest.mark.hil,
    pytest.mark.faults,
    pytest.mark.keepalive(2),
    pytest.mark.firmware_config(socket_timeout=2.0),
]


class Witnesses:
    """Where the broker's records stood when the test began: after the drill, the firmware's
    account of its latest connection must be the broker's (``assert_console_agrees_with_broker``).
    A drill reads the firmware's events, so a console that misreports the session misleads it:
    when the drill fails, the broker's word is checked first, and a contradiction named."""

    def __init__(self, faults: Faults, records: RecordLog) -> None:
        self.faults = faults
        self.records = records
        self.mark = records.mark() if records.unavailable is None else None
        self.since = time.time()

    def finish(self, drill: Drill) -> FaultTimes:
        try:
            times = drill.finish()
        except AssertionError:
            self.agree()  # a contradiction is the cause; else the drill's own failure stands
            raise
        self.agree()
        return times

    def agree(self) -> None:
        if self.mark is None:
            return  # no records of an external broker: the drill's own checks stand alone
        assert_console_agrees_with_broker(
            self.faults.serial_log,
            self.records,
            self.faults.board.config.client_id,
            mark=self.mark,
            since=self.since,
            timeout=self.faults.timeout,
            latest_only=True,
        )


@pytest.fixture
def witnesses(faults: Faults, broker_records: RecordLog) -> Iterator[Witnesses]:
    yield Witnesses(faults, broker_records)


def test_link_down_is_detected_and_the_board_comes_back(faults: Faults, witnesses: Witnesses) -> None:
    """Wi-Fi lost: the board's interface goes down; nothing fails on its established socket."""
    drill = faults.drill()
    drill.begin(faults.link_down())
    drill.await_detection()
    drill.await_will()
    faults.record(witnesses.finish(drill))


def test_flapping_link_ends_with_the_board_back(faults: Faults, witnesses: Witnesses) -> None:
    """Lost, then back for moments only while the board tries to reconnect, then back for good."""
    drill = faults.drill()
    flap = faults.link_flap()
    drill.begin(flap)
    drill.await_detection()
    drill.await_will()
    flap.flap(times=2, up_s=0.3, down_s=1.0)
    faults.record(witnesses.finish(drill))


def test_blackholed_link_is_found_by_the_keepalive_watch(faults: Faults, witnesses: Witnesses) -> None:
    """Every packet dropped silently: only the firmware's own keepalive watch can tell."""
    drill = faults.drill()
    drill.begin(faults.blackhole())
    event = drill.await_detection()
    assert event["ev"] == "link_lost", f"a blackhole makes nothing fail, yet the board saw {event}"
    drill.await_will()
    faults.record(witnesses.finish(drill))


def test_stopped_broker_then_back_without_the_session(faults: Faults, witnesses: Witnesses) -> None:
    """The broker goes away for a while and comes back with no session: the board hears of it
    at once, retries, and subscribes again once it is back."""
    drill = faults.drill()
    drill.begin(faults.broker_stopped())
    drill.await_detection()
    drill.await_reconnect_attempt()
    faults.record(witnesses.finish(drill))


def test_wedged_broker_does_not_wedge_the_board(faults: Faults, witnesses: Witnesses) -> None:
    """A frozen broker accepts connections and answers nothing: the board finds out by its
    keepalive and its attempts give up by their socket timeout, instead of waiting forever."""
    drill = faults.drill()
    drill.begin(faults.broker_wedged())
    drill.await_detection()
    drill.await_reconnect_attempt()
    faults.record(witnesses.finish(drill))


def test_slow_link_is_not_a_fault(faults: Faults, witnesses: Witnesses) -> None:
    """16 kbit/s both ways: slow, nothing lost. The board keeps echoing over it and does not
    take it for a lost link."""
    drill = faults.drill()
    drill.begin(faults.slow_link(kbit=16))
    drill.echo_during()
    faults.record(witnesses.finish(drill))


def test_unplugged_port_comes_back_under_a_new_name(faults: Faults, witnesses: Witnesses) -> None:
    """The serial port goes away and comes back under another name: the board never notices
    (it keeps echoing meanwhile), the rig notices and reads the board on the new port."""
    drill = faults.drill()
    port = faults.port_reenumerated()
    drill.begin(port)
    assert port.noticed_s is not None, f"the rig did not notice its port {port.old_url} had gone"
    drill.echo_during(seconds=1.0)
    times = witnesses.finish(drill)
    assert port.new_url is not None and port.new_url != port.old_url, (
        f"the port came back under the same name {port.new_url}: nothing re-enumerated"
    )
    faults.serial_log.from_now()
    faults.serial_log.expect_event("published", faults.timeout)  # the console reaches the rig again
    faults.record(times)
    faults.request.node.user_properties.append((f"fault.{port.name}.rig_detect_s", f"{port.noticed_s:.3f}"))
