"""The broker's records decide, whatever the console says: each mutant breaks how the firmware
meets the broker, most of them while its console tells the usual story, and the guarding HIL test
must fail naming what the broker received (or did not).

Each runs one HIL test in a pytest of its own on a mutated copy of firmware/
(``tests.rig.mutation``), on mosquitto (whose log the records come from); the session mutants
run on amqtt too (whose records come from the rig's plugin inside it).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rig.broker.amqtt import amqtt_available
from rig.broker.mosquitto import find_mosquitto
from rig.firmware_config import FirmwareConfig
from tests.rig.mutation import Mutant, assert_caught, ids

# Each test runs the suite against broken firmware, in a pytest of its own: the mutation tier.
pytestmark = pytest.mark.mutation

RESET_TEST = "tests/hil/test_session.py::test_reset_finds_session_and_does_not_resubscribe"
RESTART_TEST = "tests/hil/test_session.py::test_broker_restart_loses_session_and_firmware_resubscribes"
CONNECT_TEST = (
    "tests/hil/test_broker_records.py::"
    "test_board_connects_with_a_persistent_session_its_keepalive_and_its_will"
)
CTRL_C_TEST = "tests/hil/test_disconnect.py::test_ctrl_c_disconnects_cleanly_and_no_will_fires"
WILL_LINE = '        self.set_last_will(settings.STATUS_TOPIC, b"lost", retain=True)\n'

MUTANTS = [
    Mutant(
        # umqtt.robust's own subscribe, not the EchoClient's that prints the event line.
        "subscribes although the session is present and does not say so",
        "main.py",
        "    if not c.connect(clean_session=False):\n        c.subscribe(settings.ECHO_TOPIC)\n",
        "    c.connect(clean_session=False)\n    super(EchoClient, c).subscribe(settings.ECHO_TOPIC)\n",
        RESET_TEST,
        "the broker received [SUBSCRIBE from rig-",
    ),
    Mutant(
        # Says "subscribed" after the broker lost its session, but never sends the SUBSCRIBE.
        "claims to subscribe again after the broker lost its session",
        "echo_client.py",
        "        if not present:\n            self.subscribe(settings.ECHO_TOPIC)\n",
        '        if not present:\n            emit("subscribed", topic=settings.ECHO_TOPIC.decode())\n',
        RESTART_TEST,
        "waiting for the broker's SUBSCRIBE record of client 'rig-",
    ),
    Mutant(
        # Its console prints the session_present the broker answered, as usual.
        "connects with a clean session",
        "echo_client.py",
        "        present = connect_retry.connect(self, clean_session, False)\n",
        "        present = connect_retry.connect(self, True, False)\n",
        CONNECT_TEST,
        "clean_session=1: the broker drops the board's session",
    ),
    Mutant(
        "asks for another keepalive than its config's",
        "settings.py",
        'KEEPALIVE = config["keepalive"]\n',
        'KEEPALIVE = config["keepalive"] * 2\n',
        CONNECT_TEST,
        f"keepalive={2 * FirmwareConfig.keepalive}, not the {FirmwareConfig.keepalive} s of its config.json",
    ),
    Mutant("sets no will", "echo_client.py", WILL_LINE, "", CONNECT_TEST, "will None, expected Will("),
    Mutant(
        "sets a will that is not retained",
        "echo_client.py",
        WILL_LINE,
        WILL_LINE.replace("retain=True", "retain=False"),
        CONNECT_TEST,
        "retain=False), expected Will(",
    ),
    Mutant(
        # Closing with echoes unread makes the kernel send RST: no DISCONNECT reaches the broker,
        # while the console says the disconnect was clean.
        "drops its socket but claims a clean disconnect",
        "clean_disconnect.py",
        "def disconnect(c, status_topic):\n",
        "def disconnect(c, status_topic):\n"
        "    c.sock.close()\n    emit('disconnected', clean=True)\n    return\n",
        CTRL_C_TEST,
        "the broker received no DISCONNECT from the board before its connection ended",
    ),
]

# The same verdicts on the other broker: its records come from another source entirely.
AMQTT_NAMES = (
    "subscribes although the session is present and does not say so",
    "connects with a clean session",
    "sets no will",
    "drops its socket but claims a clean disconnect",
)
ON_AMQTT = [
    Mutant(
        f"{m.name} on amqtt",
        m.file,
        m.original,
        m.replacement,
        m.test,
        m.cause,
        m.more,
        ("--rig-broker=amqtt",),
    )
    for m in MUTANTS
    if m.name in AMQTT_NAMES
]


@pytest.mark.parametrize("mutant", MUTANTS, ids=ids(MUTANTS))
def test_broker_records_catch(mutant: Mutant, tmp_path: Path) -> None:
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed: these mutants are judged on its log")
    assert_caught(mutant, tmp_path, "--rig-broker=mosquitto")


@pytest.mark.parametrize("mutant", ON_AMQTT, ids=ids(ON_AMQTT))
def test_broker_records_catch_on_amqtt(mutant: Mutant, tmp_path: Path) -> None:
    if not amqtt_available():
        pytest.skip("amqtt is not installed")
    assert_caught(mutant, tmp_path)
