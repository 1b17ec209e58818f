"""A message in flight to the board at the moment it is stopped: the situation a goodbye must get
through.

A firmware that closes its socket with bytes unread makes the kernel end the connection with
RST, not FIN, and the broker may then discard the DISCONNECT it had not read yet and publish the
will. The tutorial's ``c.disconnect()`` does that. Letting messages circulate before a Ctrl-C
only meets that moment by chance: whether an echo is unread when the Ctrl-C lands depends on
where the board is in its turn, so such a firmware passed some runs and failed others.

``deliver_then_stop`` makes the moment. It injects a message of its own and waits for the
record that the broker delivered it to the board, then stops the board at once. The board
cannot have read the message yet unless its next turn fell in the gap. If it did, it echoed
the message, and the broker hands the echo straight back, so the board again has bytes unread.
Our firmware reads until the broker closes its side before it closes its own
(firmware/clean_disconnect.py), so it ends with FIN either way.

This holds for a loop that reads on its own schedule (the tutorial's, and our reference mode).
A loop that reads each message the moment it arrives (our responsive mode) has an empty socket
at a Ctrl-C unless bytes land during the close itself, which no test can time from outside: a
close at once is then caught by chance (tests/rig/test_catches_ctrl_c_in_flight.py).

The witness of the delivery, best first:
- the wire, readable: the broker's PUBLISH of the message's length to the board;
- the wire over TLS: a record from the broker at least as long as that PUBLISH (a TLS record is
  never shorter than what it carries);
- no wire (a board not started here): the host's own copy of the message. The broker forwards a
  message to every subscriber at once, so the board's copy is then on its way, but not yet
  proven to have arrived. The test records that as a ``not_checked`` property.
"""

from __future__ import annotations

import os
import time

import pytest

from rig.board import Board
from rig.errors import WaitTimeout
from rig.fixtures.contract import not_checked
from rig.host_client import HostClient
from rig.wire.records import BROKER, WirePacket
from rig.wire.witness import WireWitness


def in_flight_payload(tag: str) -> bytes:
    """A fresh payload whose length is the tag's own: the wire records lengths, not payloads.
    Longer than the hello and the status words, so that over TLS their records are shorter."""
    return f"in flight: {tag} ".encode() + os.urandom(32).hex().encode()


def publish_size(topic: str, data: bytes) -> int:
    """The bytes of a QoS 0 PUBLISH of ``data`` on ``topic``: fixed header (type byte and a
    remaining length of one byte below 128), topic length, topic, payload."""
    remaining = 2 + len(topic.encode()) + len(data)
    return 1 + (1 if remaining < 128 else 2) + remaining


def deliver_then_stop(
    board: Board, mqtt: HostClient, wire: WireWitness, timeout: float, tag: str, node: pytest.Item
) -> float:
    """Inject a message, wait for its delivery to the board, and press Ctrl-C. Returns the
    time just before the Ctrl-C (the start of the goodbye, for the records that follow)."""
    topic = board.config.echo_topic
    data = in_flight_payload(tag)
    since = time.time()
    mqtt.publish(topic, data)
    what = f"the broker's delivery of {data!r} to the board before the Ctrl-C"
    if wire.readable(what) is None:
        wire.wait_for(
            WirePacket,
            f"the broker's PUBLISH of the {len(data)}-byte message to the board on {topic}",
            lambda p: p.sender == BROKER and p.kind == "PUBLISH" and p.topic == topic
            and p.payload_len == len(data) and p.t >= since,
            timeout,
        )  # fmt: skip
    elif wire.captured(what) is None:
        size = publish_size(topic, data)
        if not wire.collect(
            lambda r: isinstance(r, WirePacket) and r.sender == BROKER and r.length >= size and r.t >= since,
            bool,
            timeout,
        ):
            raise WaitTimeout(
                awaited=f"a TLS record of at least {size} bytes from the broker to the board (the "
                f"{len(data)}-byte message) on the wire",
                timeout=timeout,
                last_seen=wire.tail(),
                log_path=wire.pcap_path,
            )
    else:
        not_checked(node, f"{wire.readable(what)}; the host's copy of it stands for it")
        mqtt.wait_count(topic, data, 1, timeout, since=since)
    stopped = time.time()
    board.interrupt()
    return stopped
