"""The HIL suite must be able to fail: each mutant breaks the firmware in one way, and the test
that guards that behaviour must fail with a message that names the cause.

Each mutant runs one HIL test in a pytest of its own, on a copy of firmware/ with one edit
(``tests.rig.mutation``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rig.firmware_config import own_contract
from tests.rig.mutation import Mutant, assert_caught, ids

# Each test runs the suite against broken firmware, in a pytest of its own: the mutation tier.
pytestmark = pytest.mark.mutation

ECHO_CALL = "            if not self.echo(topic, msg):\n"
RESTART_TEST = "tests/hil/test_session.py::test_broker_restart_loses_session_and_firmware_resubscribes"

MUTANTS = [
    Mutant(
        "stops echoing",
        "echo_client.py",
        ECHO_CALL,
        "            if False:\n",
        "tests/hil/test_echo_loop.py::test_injected_message_keeps_circulating[tutorial]",
        "b'11 22 3311' on 'rig/virtual/",
    ),
    Mutant(
        "echoes on another topic",
        "echo_client.py",
        ECHO_CALL,
        "            if not self.echo(topic + b'/elsewhere', msg):\n",
        "tests/hil/test_echo_loop.py::test_injected_message_keeps_circulating[tutorial]",
        "/echo/elsewhere b'11 22 3311'",
    ),
    Mutant(
        "never disconnects",
        "main.py",
        "    c.disconnect()\n",
        "    pass\n",
        "tests/hil/test_disconnect.py::test_ctrl_c_disconnects_cleanly_and_no_will_fires",
        "waiting for serial event 'disconnected'",
    ),
    Mutant(
        # Closing with echoes unread makes the kernel send RST: the RST case, without DISCONNECT.
        "drops its socket but claims a clean disconnect",
        "clean_disconnect.py",
        "def disconnect(c, status_topic):\n",
        "def disconnect(c, status_topic):\n"
        "    c.sock.close()\n    emit('disconnected', clean=True)\n    return\n",
        "tests/hil/test_disconnect.py::test_ctrl_c_disconnects_cleanly_and_no_will_fires",
        "the broker received no DISCONNECT from the board",
    ),
    Mutant(
        "resubscribes although the session was present",
        "main.py",
        "    if not c.connect(clean_session=False):\n        c.subscribe(settings.ECHO_TOPIC)\n",
        "    c.connect(clean_session=False)\n    c.subscribe(settings.ECHO_TOPIC)\n",
        "tests/hil/test_session.py::test_reset_finds_session_and_does_not_resubscribe",
        "subscribed again although the broker kept its session",
    ),
    # The umqtt.robust 1.0 workarounds: each is still needed by the locked version.
    Mutant(
        "does not subscribe again after the broker lost its session",
        "echo_client.py",
        "        if not present:\n            self.subscribe(settings.ECHO_TOPIC)\n",
        "",
        RESTART_TEST,
        "waiting for serial event 'subscribed'",
    ),
    Mutant(
        # robust 1.0's wait_msg then reads the SUBACK: it reconnects underneath the subscribe,
        # which waits on the new connection for the answer sent on the old one, forever.
        "waits for its SUBACK with a read that reconnects",
        "echo_client.py",
        "            return bounded_read.wait_msg(self)  # this connection only\n",
        "            return super().wait_msg()\n",
        "tests/hil/test_session.py::test_a_connection_lost_before_the_suback_is_made_again_and_subscribed",
        "b'11 22 3311' on 'rig/virtual/",
    ),
    Mutant(
        # umqtt.simple 1.3.4 reads the CONNACK without checking one came: an empty read, then
        # an IndexError that umqtt.robust's reconnect lets through.
        "dies when the broker hangs up before its CONNACK",
        "connect_retry.py",
        "        except (OSError, IndexError) as e:\n",
        "        except OSError as e:\n",
        "tests/hil/test_session.py::test_a_connection_lost_before_the_connack_is_made_again_and_subscribed",
        "waiting for the broker's CONNACK record of client 'rig-virtual-",
    ),
    Mutant(
        # robust 1.0's own check_msg then runs: after reconnecting it waits on a blocking socket.
        "blocks in check_msg after a reconnect",
        "echo_client.py",
        "    def check_msg(self):\n",
        "    def check_msg_unused(self):\n",
        RESTART_TEST,
        "waiting for serial event 'idle'",
    ),
    # A limit the firmware takes from anywhere but its config.json.
    Mutant(
        "holds back fewer payloads than its config says",
        "settings.py",
        'MAX_HELD = config["max_held"]\n',
        'MAX_HELD = config["max_held"] // 2\n',
        "tests/hil/test_responsive.py::test_many_circulating_payloads_overflow_the_hold_back_list_not_the_heap",
        f"below the cap max_held={own_contract().app['max_held']} of its config.json",
    ),
    # A board that never comes online: the console says why, the broker has the last word.
    Mutant(
        "swallows its Wi-Fi failure",
        "wifi.py",
        '                emit("wifi_failed", status=status_name(network, wlan.status()), ms=waited)\n',
        "",
        "tests/hil/test_offline_reasons.py::test_a_board_that_does_not_join_wifi_is_named_so",
        "the rig did not name the Wi-Fi failure",
    ),
    Mutant(
        "swallows its unreachable broker",
        "connect_retry.py",
        '            emit(\n                "broker_unreachable",\n',
        "            dict(\n",
        "tests/hil/test_offline_reasons.py::test_a_board_that_does_not_reach_the_broker_is_named_so",
        "the rig did not name the unreachable broker",
    ),
    Mutant(
        # The console is the second witness: the broker's CONNECT record outweighs it.
        "says the broker is out of reach once connected, then stalls",
        "connect_retry.py",
        "            return simple.MQTTClient.connect(c, clean_session)\n",
        "            simple.MQTTClient.connect(c, clean_session)\n"
        "            emit('broker_unreachable', broker='?', error='OSError(113,)', attempt=1)\n"
        "            while True:\n                time.sleep(1)\n",
        "tests/hil/test_echo_loop.py::test_boots_connects_and_publishes_hello",
        "but the broker recorded its CONNECT",
        outcome="1 error",
    ),
]


@pytest.mark.parametrize("mutant", MUTANTS, ids=ids(MUTANTS))
def test_suite_fails_naming_the_cause(mutant: Mutant, tmp_path: Path) -> None:
    assert_caught(mutant, tmp_path)
