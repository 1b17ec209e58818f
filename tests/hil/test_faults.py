"""Faults a board meets: it detects each, the broker publishes its will when it lost the board,
the board reconnects (and subscribes again if its session was lost), the echo loop resumes, and
it never reboots. Times to detect and to resume go into each test's properties.

A keepalive of 2 s and a socket timeout of 2 s keep each drill to seconds: the firmware detects
a silent link after 1.5 keepalives (3 s), and gives up a connect or read after the timeout.
A board power cut is ``test_disconnect.py::test_power_cut_fires_the_will``; a broker restart,
``test_session.py::test_broker_restart_loses_session_and_firmware_resubscribes``.
"""

from __future__ import annotations

import pytest

from rig.fixtures.faults import Faults

pytestmark = [
    pytest.mark.hil,
    pytest.mark.faults,
    pytest.mark.keepalive(2),
    pytest.mark.firmware_config(socket_timeout=2.0),
]


def test_link_down_is_detected_and_the_board_comes_back(faults: Faults) -> None:
    """Wi-Fi lost: the board's interface goes down; nothing fails on its established socket."""
    drill = faults.drill()
    drill.begin(faults.link_down())
    drill.await_detection()
    drill.await_will()
    faults.record(drill.finish())


def test_flapping_link_ends_with_the_board_back(faults: Faults) -> None:
    """Lost, then back for moments only while the board tries to reconnect, then back for good."""
    drill = faults.drill()
    flap = faults.link_flap()
    drill.begin(flap)
    drill.await_detection()
    drill.await_will()
    flap.flap(times=2, up_s=0.3, down_s=1.0)
    faults.record(drill.finish())


def test_blackholed_link_is_found_by_the_keepalive_watch(faults: Faults) -> None:
    """Every packet dropped silently: only the firmware's own keepalive watch can tell."""
    drill = faults.drill()
    drill.begin(faults.blackhole())
    event = drill.await_detection()
    assert event["ev"] == "link_lost", f"a blackhole makes nothing fail, yet the board saw {event}"
    drill.await_will()
    faults.record(drill.finish())


def test_stopped_broker_then_back_without_the_session(faults: Faults) -> None:
    """The broker goes away for a while and comes back with no session: the board hears of it
    at once, retries, and subscribes again once it is back."""
    drill = faults.drill()
    drill.begin(faults.broker_stopped())
    drill.await_detection()
    drill.await_reconnect_attempt()
    faults.record(drill.finish())


def test_wedged_broker_does_not_wedge_the_board(faults: Faults) -> None:
    """A frozen broker accepts connections and answers nothing: the board finds out by its
    keepalive and its attempts give up by their socket timeout, instead of waiting forever."""
    drill = faults.drill()
    drill.begin(faults.broker_wedged())
    drill.await_detection()
    drill.await_reconnect_attempt()
    faults.record(drill.finish())


def test_slow_link_is_not_a_fault(faults: Faults) -> None:
    """16 kbit/s both ways: slow, nothing lost. The board keeps echoing over it and does not
    take it for a lost link."""
    drill = faults.drill()
    drill.begin(faults.slow_link(kbit=16))
    drill.echo_during()
    faults.record(drill.finish())


def test_unplugged_port_comes_back_under_a_new_name(faults: Faults) -> None:
    """The serial port goes away and comes back under another name: the board never notices
    (it keeps echoing meanwhile), the rig notices and reads the board on the new port."""
    drill = faults.drill()
    port = faults.port_reenumerated()
    drill.begin(port)
    assert port.noticed_s is not None, f"the rig did not notice its port {port.old_url} had gone"
    drill.echo_during(seconds=1.0)
    times = drill.finish()
    assert port.new_url is not None and port.new_url != port.old_url, (
        f"the port came back under the same name {port.new_url}: nothing re-enumerated"
    )
    faults.serial_log.from_now()
    faults.serial_log.expect_event("published", faults.timeout)  # the console reaches the rig again
    faults.record(times)
    faults.request.node.user_properties.append((f"fault.{port.name}.rig_detect_s", f"{port.noticed_s:.3f}"))
