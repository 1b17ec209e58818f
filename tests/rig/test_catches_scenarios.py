"""The broker scenarios must be able to fail: each mutant takes away one thing the firmware does
about a misbehaving broker (docs/broker-scenarios.md), mostly by putting back what umqtt.simple
1.3.4 / umqtt.robust 1.0 do, and the scenario that guards it must fail naming the cause.

Each case runs one scenario of tests/rig/test_broker_scenarios.py against the mutated firmware in
a pytest of its own; a mutant that breaks several scenarios is run against each.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.rig.mutation import Mutant, assert_caught

pytestmark = pytest.mark.mutation

SCENARIO = "tests/rig/test_broker_scenarios.py::test_broker_scenario[{}]"

# (what the firmware no longer does, file, original, replacement)
ENDS_ON_REFUSED_CONNACK = (
    "ends on a refused CONNACK (umqtt.simple raises)",
    "connect_retry.py",
    "        except simple.MQTTException as e:\n",
    "        except KeyError as e:\n",
)
NO_SOCKET_TIMEOUT = (
    "waits for a CONNACK for ever",
    "link_watch.py",
    "        s.settimeout(SOCKET_TIMEOUT)\n        no_delay(s)\n",
    "        no_delay(s)\n",
)
ENDS_ON_REFUSED_SUBACK = (
    "ends on a refused SUBSCRIBE (umqtt.simple raises)",
    "echo_client.py",
    "        except MQTTException as e:\n",
    "        except KeyError as e:\n",
)
ENDS_ON_EPIPE_IN_SUBSCRIBE = (
    "ends when the SUBSCRIBE cannot be sent (OSError 32 in reconnect)",
    "echo_client.py",
    "        except OSError as e:\n            self.log(False, e)\n"
    "            connect_retry.close(self.sock)\n            return\n        except MQTTException",
    "        except KeyError as e:\n            self.log(False, e)\n"
    "            connect_retry.close(self.sock)\n            return\n        except MQTTException",
)
NO_SILENCE_WATCH = (
    "never finds a silent broker",
    "link_watch.py",
    "        if silent > KEEPALIVE_MS * 3 // 2:\n",
    "        if False:\n",
)
NO_PUBACK = (
    "never sends PUBACK",
    "bounded_read.py",
    "        send_ack(c, 0x40, pid)\n",
    "        pass\n",
)
NO_QOS2 = (
    "takes no QoS 2 message (umqtt.simple: assert 0)",
    "bounded_read.py",
    "        released_later.add(pid)\n        send_ack(c, 0x50, pid)\n",
    "        assert 0\n",
)
QOS2_TWICE = (
    "delivers a redelivered QoS 2 message twice",
    "bounded_read.py",
    "    if op & 6 == 4 and pid in released_later:\n",
    "    if False:\n",
)
MISSES_EOF = (
    "takes the end of the connection for no data",
    "bounded_read.py",
    '    if res == b"":\n        raise OSError(-1)\n',
    '    if res == b"":\n        return None\n',
)
NO_READ_BOUND = (
    # umqtt.simple's setblocking(True), as it acts on an ESP32 (the unix port keeps the timeout).
    "waits for the rest of a packet for ever (umqtt.simple's setblocking(True) on an ESP32)",
    "bounded_read.py",
    "    c.link.timeout(settings.SOCKET_TIMEOUT)\n    if res is None:\n",
    "    c.link.timeout(None)\n    if res is None:\n",
)
LONG_LENGTH = (
    "reads a remaining length of any size (umqtt.simple's _recv_len)",
    "bounded_read.py",
    "    for shift in (0, 7, 14, 21):\n",
    "    for shift in range(0, 70, 7):\n",
)
UNREAD_PACKETS = (
    "leaves a packet it did not ask for unread (umqtt.simple 1.3.4)",
    "bounded_read.py",
    "        return other_packet(c, op)\n",
    "        return op\n",
)
ECHOES_ANY_TOPIC = (
    "echoes a message on a topic it never subscribed to",
    "echo_client.py",
    "        if topic != settings.ECHO_TOPIC:\n",
    "        if False:\n",
)
DROPS_EMPTY = (
    "drops an empty payload",
    "echo_client.py",
    '        emit_payload("received", topic, msg)\n',
    '        if not msg:\n            return\n        emit_payload("received", topic, msg)\n',
)
LEAKS_SOCKET = (
    "leaks its socket on every reconnect (umqtt.simple 1.3.4)",
    "connect_retry.py",
    "        close(c.sock)\n        try:\n",
    "        try:\n",
)
COUNTS_CHARACTERS = (
    "counts a topic's characters, not its UTF-8 bytes, in a PUBLISH's topic length",
    "whole_packet.py",
    '    packet += len(topic).to_bytes(2, "big")\n',
    '    packet += len(topic.decode()).to_bytes(2, "big")\n',
)
ONE_BYTE_LENGTH = (
    "writes a PUBLISH's remaining length in one byte (as umqtt.simple 1.3.4 writes a SUBSCRIBE's)",
    "whole_packet.py",
    "        packet.append(byte | 0x80 if size else byte)\n        if not size:\n",
    "        packet.append(byte)\n        if True:\n",
)

# Each scenario, the mutant that breaks it, and what its failure must name.
CASES: list[tuple[str, tuple[str, str, str, str], str]] = [
    *(
        (f"connack-refused-{code}", ENDS_ON_REFUSED_CONNACK, f"scenario connack-refused-{code}")
        for code in range(1, 6)
    ),
    ("connack-late", NO_SOCKET_TIMEOUT, "no CONNACK within its socket timeout"),
    ("suback-failure", ENDS_ON_REFUSED_SUBACK, "scenario suback-failure"),
    ("closed-before-subscribe", ENDS_ON_EPIPE_IN_SUBSCRIBE, "scenario closed-before-subscribe"),
    ("pingresp-withheld", NO_SILENCE_WATCH, "silent for 1.5 keepalives"),
    ("publish-qos1", NO_PUBACK, "awaited PUBACK id 4660"),
    ("publish-qos1-dup", NO_PUBACK, "awaited PUBACK id 4661"),
    ("publish-qos2", NO_QOS2, "scenario publish-qos2"),
    # The wire sees it first, mostly: the second delivery's echo comes where the PUBCOMP belongs;
    # under load the console's second 'received' can come first (OR_CAUSES).
    ("publish-qos2-dup", QOS2_TWICE, "awaited PUBCOMP id 9030, the board sent PUBLISH"),
    # Even the close that starts each scenario goes unnoticed.
    ("closed-mid-packet", MISSES_EOF, "awaited a new connection of the board"),
    ("stalled-mid-packet", NO_READ_BOUND, "no more bytes within its socket timeout"),
    ("length-five-bytes", LONG_LENGTH, "no 'error' event with {'type': 'MalformedPacket'}"),
    ("length-too-large", NO_READ_BOUND, "the rest never comes within its socket timeout"),
    ("suback-unasked", UNREAD_PACKETS, "no 'error' event with {'type': 'UnexpectedPacket'}"),
    ("pubrel-stray", UNREAD_PACKETS, "awaited PUBCOMP id 2570"),
    ("retained-unsubscribed", ECHOES_ANY_TOPIC, "payload=b'stale'"),
    ("topic-utf8", COUNTS_CHARACTERS, "scenario topic-utf8"),
    ("topic-longest", ONE_BYTE_LENGTH, "scenario topic-longest"),
    ("retained-empty", DROPS_EMPTY, "scenario retained-empty"),
    ("reconnect-closes-old-socket", LEAKS_SOCKET, "the board still holds its socket (a leak)"),
]

# Causes that two witnesses race to name (seen in CI under load), each enough on its own.
OR_CAUSES = {"publish-qos2-dup": ("2 'received' events where 1 belong: a message delivered twice",)}

MUTANTS = [
    Mutant(
        f"{what} [{scenario}]",
        file,
        original,
        replacement,
        SCENARIO.format(scenario),
        cause,
        or_causes=OR_CAUSES.get(scenario, ()),
    )
    for scenario, (what, file, original, replacement), cause in CASES
]


@pytest.mark.parametrize("mutant", MUTANTS, ids=[scenario for scenario, _, _ in CASES])
def test_broker_scenarios_fail_naming_the_cause(mutant: Mutant, tmp_path: Path) -> None:
    assert_caught(mutant, tmp_path)
