"""The rig names why a board never came online from its console's ``wifi_failed`` and
``broker_unreachable``, and believes a ``broker_unreachable`` only when the broker agrees."""

from __future__ import annotations

from rig.errors import WaitTimeout
from rig.firmware_config import FirmwareConfig
from rig.offline_reason import BrokerNotReached, WifiNotJoined, offline_error, why_offline

CONFIG = FirmwareConfig(
    broker_host="192.0.2.2", broker_port=1883, client_id="rig-b-1", topic_prefix="rig/b-1", loop_period=0.1
)
WIFI_FAILED = {"ev": "wifi_failed", "status": "STAT_NO_AP_FOUND", "ms": 20004}
UNREACHABLE = {
    "ev": "broker_unreachable",
    "broker": "192.0.2.2:1883",
    "error": "OSError(113,)",
    "attempt": 3,
    "reconnect": False,
}
AWAITED = "the firmware to boot, connect and publish hello on rig/b-1/echo"


def test_wifi_failed_is_named() -> None:
    reason = why_offline([{"ev": "boot"}, WIFI_FAILED], CONFIG, False)
    error = offline_error(reason, AWAITED, 10.0, [], None)
    assert isinstance(error, WifiNotJoined) and error.event == WIFI_FAILED
    assert "the board did not join Wi-Fi (STAT_NO_AP_FOUND after 20004 ms" in str(error), error
    assert str(error).startswith(f"timed out after 10.0s waiting for {AWAITED}: the board did not")


def test_broker_unreachable_is_named_with_the_address() -> None:
    reason = why_offline([{"ev": "boot"}, {"ev": "wifi", "ms": 900}, UNREACHABLE], CONFIG, False)
    error = offline_error(reason, AWAITED, 10.0, [], None)
    assert isinstance(error, BrokerNotReached), error
    assert "the board joined Wi-Fi but did not reach the broker at 192.0.2.2:1883 (OSError(113,)" in str(
        error
    )
    assert "no broker records" not in str(error)
    unconfirmed = str(offline_error(why_offline([UNREACHABLE], CONFIG, None), AWAITED, 1.0, [], None))
    assert "no broker records to check it against" in unconfirmed


def test_a_console_that_says_unreachable_while_the_broker_saw_the_board_is_not_believed() -> None:
    reason = why_offline([UNREACHABLE], CONFIG, True)
    error = offline_error(reason, AWAITED, 10.0, [], None)
    assert type(error) is WaitTimeout, error
    assert (
        "but the broker recorded its CONNECT" in str(error)
        and "did not reach" not in str(error).split("console says")[0]
    )


def test_no_event_leaves_the_wait_s_own_message() -> None:
    assert why_offline([{"ev": "boot"}, {"ev": "error", "type": "OSError"}], CONFIG, False) is None
    error = offline_error(None, AWAITED, 10.0, ["last"], None)
    assert type(error) is WaitTimeout and str(error).startswith(
        f"timed out after 10.0s waiting for {AWAITED}\n"
    )
