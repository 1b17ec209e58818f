"""The defects that used to pass the whole suite (issue 20, "what still escapes") now fail it:
each mutant breaks the firmware in one such way, and the HIL test that now guards it must fail
with a message naming the cause (``tests.rig.mutation``).

Where the broker can tell, it is the first witness: a console that contradicts its records, a
"dropped" message it got back, a status it was never given cause for, a login it refused more
often than a giving-up firmware would try.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rig.broker.amqtt import amqtt_available
from rig.broker.mosquitto import find_mosquitto
from rig.firmware_config import own_contract
from tests.rig.mutation import Mutant, assert_caught, ids

# Each test runs the suite against broken firmware, in a pytest of its own: the mutation tier.
pytestmark = pytest.mark.mutation

CONNECT_TEST = (
    "tests/hil/test_broker_records.py::"
    "test_board_connects_with_a_persistent_session_its_keepalive_and_its_will"
)
RESTART_TEST = "tests/hil/test_session.py::test_broker_restart_loses_session_and_firmware_resubscribes"

MUTANTS = [
    # 1. Event lines that contradict the broker's records.
    Mutant(
        "reports no session on its first connect whatever the CONNACK said",
        "echo_client.py",
        '        emit("connected", session_present=bool(present), reconnect=False)\n',
        '        emit("connected", session_present=False, reconnect=False)\n',
        CONNECT_TEST,
        "the console reported connected session_present=0 where the broker's CONNACK said session_present=1",
    ),
    Mutant(
        "reports the session present flag of each reconnect inverted",
        "echo_client.py",
        '        emit("connected", session_present=bool(present), reconnect=True)\n',
        '        emit("connected", session_present=not present, reconnect=True)\n',
        RESTART_TEST,
        "the console reported connected session_present=1 where the broker's CONNACK said session_present=0",
    ),
    Mutant(
        # The goodbye's status goes out, the DISCONNECT does not: the broker sees the connection
        # closed and publishes the will, while the console says the disconnect was clean.
        "claims a clean disconnect without sending DISCONNECT",
        "clean_disconnect.py",
        '        c.sock.write(b"\\xe0\\0")  # DISCONNECT\n',
        "        pass  # no DISCONNECT\n",
        CONNECT_TEST,
        "the console reported 1 clean disconnect(s), but the broker saw 0 connection(s)",
    ),
    # 2. A drop the firmware reports but does not make.
    Mutant(
        "echoes a truncated copy of an oversize payload it reports dropped",
        "bounded_read.py",
        "    elif sz > settings.MAX_PAYLOAD:  # check the size before reading\n        skip(c.sock, sz)\n",
        "    elif sz > settings.MAX_PAYLOAD:  # check the size before reading\n"
        "        c.cb(topic, c.sock.read(settings.MAX_PAYLOAD))\n"
        "        skip(c.sock, sz - settings.MAX_PAYLOAD)\n",
        "tests/hil/test_echo_message.py::test_payload_above_max_payload_is_dropped_cleanly_and_the_loop_goes_on",
        f"reported the oversize payload of {own_contract().app['max_payload'] + 1} bytes dropped, "
        "yet the broker got it back from the board",
    ),
    Mutant(
        "reports held repeats dropped but keeps them",
        "responsive_loop.py",
        "                    _, _, dropped = held.pop(0)\n",
        "                    _, _, dropped = held[0]\n",
        "tests/hil/test_responsive.py",
        "the list goes on growing past max_held=",
    ),
    # 3. A heap that leaks on idle turns.
    Mutant(
        "keeps a record of every idle turn",
        "echo_client.py",
        "    def idle(self):\n",
        "    def idle(self):\n"
        '        if not hasattr(self, "quiet_turns"):\n'
        "            self.quiet_turns = []\n"
        "        self.quiet_turns.append((time.ticks_ms(), len(self.inbox)))\n",
        "tests/hil/test_console.py::test_console_prints_the_idle_line_when_nothing_arrived",
        "the heap leaks on idle turns",
    ),
    # 4. The idle line on turns when messages did arrive.
    Mutant(
        "prints the idle line on every turn",
        "main.py",
        "        time.sleep(settings.PERIOD)\n",
        '        time.sleep(settings.PERIOD)\n        print("other operator")\n',
        "tests/hil/test_echo_loop.py::test_echo_cadence_is_the_loop_period",
        "it prints the line on turns when messages did arrive",
    ),
    # 5. What appears on the status topic besides its retained value.
    Mutant(
        "repeats its status, unretained, with every echo",
        "echo_client.py",
        "            self.handled += 1\n",
        "            self.handled += 1\n"
        '            MQTTClient.publish(self, settings.STATUS_TOPIC, b"online")\n',
        "tests/hil/test_echo_loop.py::test_injected_message_keeps_circulating[tutorial]",
        "carried more than the board's changes: b'online'",
    ),
    # 6. Bursts larger than one size.
    Mutant(
        "keeps only the last 8 messages of a turn",
        "echo_client.py",
        "        for topic, msg in messages:\n",
        "        for topic, msg in messages[-8:]:\n",
        "tests/hil/test_echo_message.py::test_a_burst_larger_than_one_turn_reads_comes_back_whole",
        "payloads of a burst never came back",
    ),
    # 7. Long outages.
    Mutant(
        "gives up after 30 refused logins",
        "connect_retry.py",
        "        attempt += 1\n",
        '        attempt += 1\n        if attempt > 30:\n            raise RuntimeError("giving up")\n',
        "tests/hil/test_security.py::test_the_firmware_reports_a_refused_login_and_retries_with_a_backoff",
        "the firmware gave up on a long outage: it stopped trying after 30 refused logins",
    ),
    Mutant(
        "carries its longest wait into the next outage",
        "connect_retry.py",
        "    attempt = 0\n    backoff = settings.BACKOFF_INITIAL\n",
        "    global _backoff\n    attempt = 0\n    backoff = _backoff\n",
        "tests/hil/test_security.py::test_the_backoff_starts_again_from_its_first_wait_after_a_success",
        "the backoff did not come down after a success",
        more=(
            (
                "connect_retry.py",
                "        backoff = min(backoff * 2, settings.BACKOFF_MAX)\n",
                "        backoff = _backoff = min(backoff * 2, settings.BACKOFF_MAX)\n",
            ),
            (
                "connect_retry.py",
                "def waiting(attempt, backoff, reconnect):\n",
                "_backoff = settings.BACKOFF_INITIAL\n\n\ndef waiting(attempt, backoff, reconnect):\n",
            ),
        ),
    ),
    # 8. A second lost session in one boot.
    Mutant(
        "subscribes again only after the first lost session of a boot",
        "echo_client.py",
        "        if not present:\n            self.subscribe(settings.ECHO_TOPIC)\n",
        '        if not present and not getattr(self, "lost_once", False):\n'
        "            self.lost_once = True\n"
        "            self.subscribe(settings.ECHO_TOPIC)\n",
        RESTART_TEST,
        "the firmware did not subscribe again after the second lost session in one boot",
    ),
]

# The contradictions again on the other broker: its records come from another source entirely.
AMQTT_NAMES = (
    "reports no session on its first connect whatever the CONNACK said",
    "claims a clean disconnect without sending DISCONNECT",
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
def test_escapes_are_caught_naming_the_cause(mutant: Mutant, tmp_path: Path) -> None:
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed: these mutants are judged on its records")
    assert_caught(mutant, tmp_path, "--rig-broker=mosquitto")


@pytest.mark.parametrize("mutant", ON_AMQTT, ids=ids(ON_AMQTT))
def test_escapes_are_caught_on_amqtt(mutant: Mutant, tmp_path: Path) -> None:
    if not amqtt_available():
        pytest.skip("amqtt is not installed")
    assert_caught(mutant, tmp_path)
