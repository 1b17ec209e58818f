"""The wire's verdicts can fail (``rig.wire.checks``): firmware broken on purpose in what only the
wire shows, each caught by the test that judges on the packets, with a message naming the cause
(``tests.rig.mutation``).

They run on amqtt, where the broker's side cannot tell: amqtt forwards every message at the
subscription's QoS, and never drops a client that stops pinging (over TLS too, where the
wire shows only when the board sent a record).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.rig.mutation import Mutant, assert_caught, ids

# Each test runs the suite against broken firmware, in a pytest of its own: the mutation tier.
pytestmark = pytest.mark.mutation

ECHO_TEST = (
    "tests/hil/test_wire_witness.py::test_the_echo_leaves_the_board_at_the_injected_qos_and_not_retained"
)
GOODBYE_TEST = "tests/hil/test_wire_witness.py::test_ctrl_c_says_disconnect_and_closes_with_fin"
KEEPALIVE_TEST = "tests/hil/test_keepalive.py::test_idle_board_stays_connected_over_several_keepalives"
AMQTT = ("--rig-broker=amqtt",)
HEADER = '    packet = bytearray(b"\\x31" if retain else b"\\x30")\n'

MUTANTS = [
    Mutant(
        # A QoS 1 PUBLISH carries a packet id after its topic: two bytes more.
        "echoes at QoS 1",
        "whole_packet.py",
        HEADER,
        '    packet = bytearray(b"\\x31" if retain else b"\\x32")\n',
        ECHO_TEST,
        "the board sent its echo at QoS 1, not the QoS 0 it was injected with",
        more=(
            (
                "whole_packet.py",
                "    size = 2 + len(topic) + len(msg)\n",
                "    size = 4 + len(topic) + len(msg)\n",
            ),
            (
                "whole_packet.py",
                "    packet += topic\n",
                '    packet += topic\n    packet += b"\\x00\\x07"\n',
            ),
        ),
        args=AMQTT,
    ),
    Mutant(
        "echoes retained",
        "whole_packet.py",
        HEADER,
        '    packet = bytearray(b"\\x31")\n',
        ECHO_TEST,
        "the board sent its echo with the retain flag set",
        args=AMQTT,
    ),
    Mutant(
        "never pings",
        "link_watch.py",
        "                c.ping()\n",
        "                pass\n",
        KEEPALIVE_TEST,
        "PINGREQ in 10.0s idle (keepalive 2s): an idle client must ping",
        args=AMQTT,
    ),
    Mutant(
        # Over TLS a PINGREQ is an "encrypted" record: the wire still shows the board silent.
        "never pings, over TLS",
        "link_watch.py",
        "                c.ping()\n",
        "                pass\n",
        KEEPALIVE_TEST,
        # Too few records, or one gap too long: both name the rule.
        "an idle client must send a packet within each keepalive",
        args=(*AMQTT, "--rig-tls"),
    ),
    Mutant(
        "closes without DISCONNECT",
        "clean_disconnect.py",
        '        c.sock.write(b"\\xe0\\0")  # DISCONNECT\n',
        "        pass\n",
        GOODBYE_TEST,
        "without sending DISCONNECT first",
        args=AMQTT,
    ),
    Mutant(
        # The tutorial's c.disconnect(): DISCONNECT, then close at once with echoes unread.
        "closes at once after DISCONNECT, ending in RST",
        "clean_disconnect.py",
        "    c.link.timeout(EOF_TIMEOUT)\n",
        "    c.sock.close()\n    emit('disconnected', clean=True)\n    return\n",
        GOODBYE_TEST,
        "ended in RST",
        args=AMQTT,
    ),
]


@pytest.mark.parametrize("mutant", MUTANTS, ids=ids(MUTANTS))
def test_wire_check_fails_naming_the_cause(mutant: Mutant, tmp_path: Path) -> None:
    assert_caught(mutant, tmp_path)
