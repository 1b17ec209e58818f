"""A board that never comes online is named for why: it did not join Wi-Fi, or it joined and did
not reach the broker (docs/first-real-board.md). The firmware says which on its console
(``wifi_failed``, ``broker_unreachable``); the rig's wait for the board names it
(``rig.offline_reason``), and the broker's records confirm that nothing of the board arrived.

On a real board the Wi-Fi failure is real: an SSID no access point has. The virtual board has no
radio (the unix port has no ``network`` module), so for that test it gets one that finds no
access point, put on its flash and removed afterwards: the one part no test here can reach is a
Wi-Fi chip.
"""

from __future__ import annotations

import dataclasses
import socket
import uuid
from collections.abc import Iterator

import pytest

from rig.board import Board
from rig.broker import Broker
from rig.broker.record_log import RecordLog
from rig.errors import WaitTimeout
from rig.offline_reason import BrokerNotReached, WifiNotJoined
from rig.serialio import SerialLog
from rig.session import RigSession

pytestmark = pytest.mark.hil

# A board's network module as MicroPython has it on an ESP32, for a board out of range of any
# access point: it never connects and its status says so.
NO_ACCESS_POINT = b"""\
STA_IF = 0
STAT_IDLE = 1000
STAT_NO_AP_FOUND = 201


class WLAN:
    def __init__(self, interface):
        self._status = STAT_IDLE

    def active(self, on=None):
        return True

    def isconnected(self):
        return False

    def connect(self, ssid, password):
        self._status = STAT_NO_AP_FOUND

    def status(self):
        return self._status
"""

# Short enough that the firmware gives up well inside the rig's wait (--rig-timeout).
WIFI_TIMEOUT = 0.5


@pytest.fixture
def radio_without_access_point(rig_session: RigSession, board: Board) -> Iterator[None]:
    """A board whose Wi-Fi finds no access point: one with a radio as it is, one without (the
    unix port, whatever kind of board it stands in for) with the network module above on its
    flash until the test ends. The board is asked, not its kind: a unix port behind a USB
    adapter's identity has no radio either."""
    if has_radio(board):
        yield  # a real radio: the SSID the test gives is one no access point has
        return
    with board.repl() as repl:
        repl.fs_writefile("/network.py", NO_ACCESS_POINT)
    # The board's radio, not firmware: a deploy of a release bundle must leave it in place.
    board.hardware_stand_ins.add("/network.py")
    try:
        yield
    finally:
        board.hardware_stand_ins.discard("/network.py")
        with board.repl() as repl:
            repl.fs_rmfile("/network.py")


def has_radio(board: Board) -> bool:
    """Whether the board's runtime has a ``network`` module of its own."""
    with board.repl() as repl:
        found = repl.exec("try:\n import network\n print('radio')\nexcept ImportError:\n print('none')")
    return b"radio" in found


def test_a_board_that_does_not_join_wifi_is_named_so(
    rig_session: RigSession,
    board: Board,
    broker: Broker,
    broker_records: RecordLog,
    serial_log: SerialLog,
    radio_without_access_point: None,
) -> None:
    board.config.contract.require_events("wifi_failed", why="naming a board that did not join Wi-Fi")
    board.config.setting("wifi_timeout")
    config = dataclasses.replace(
        board.config,
        wifi_ssid=f"rig-no-such-ap-{uuid.uuid4().hex[:8]}",
        app={**board.config.app, "wifi_timeout": WIFI_TIMEOUT},
    )
    mark = broker_records.mark() if broker.records_unavailable is None else 0
    with pytest.raises(WaitTimeout) as waited:
        rig_session.run_firmware(config)
    message = str(waited.value)
    assert isinstance(waited.value, WifiNotJoined), f"the rig did not name the Wi-Fi failure: {message}"
    assert "the board did not join Wi-Fi" in message, message
    if "/network.py" in board.hardware_stand_ins:
        assert "STAT_NO_AP_FOUND" in message, message
    # The broker's word: nothing of the board arrived.
    if broker.records_unavailable is None:
        assert broker_records.connects(config.client_id, after=mark) == [], "the board reached the broker"
    # Whatever the console says, it never names the password.
    assert config.wifi_password is None or config.wifi_password not in message


def test_a_board_that_does_not_reach_the_broker_is_named_so(
    rig_session: RigSession,
    board: Board,
    broker: Broker,
    broker_records: RecordLog,
    serial_log: SerialLog,
) -> None:
    board.config.contract.require_events("broker_unreachable", why="naming a broker out of the board's reach")
    config = dataclasses.replace(board.config, broker_port=closed_port())
    mark = broker_records.mark() if broker.records_unavailable is None else 0
    with pytest.raises(WaitTimeout) as waited:
        rig_session.run_firmware(config)
    message = str(waited.value)
    assert isinstance(waited.value, BrokerNotReached), (
        f"the rig did not name the unreachable broker: {message}"
    )
    where = f"{config.broker_host}:{config.broker_port}"
    assert f"the board joined Wi-Fi but did not reach the broker at {where}" in message, message
    # The console's second witness, and the broker's word: nothing of the board arrived.
    event = serial_log.expect_event("broker_unreachable", rig_session.settings.timeout)
    assert event["broker"] == where, event
    if broker.records_unavailable is None:
        assert broker_records.connects(config.client_id, after=mark) == [], "the board reached the broker"


def closed_port() -> int:
    """A TCP port nothing listens on: the kernel's pick, released at once."""
    with socket.socket() as s:
        s.bind(("", 0))
        return int(s.getsockname()[1])
