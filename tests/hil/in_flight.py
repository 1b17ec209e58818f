"""A message in flight to the board at the moment it is stopped: the situation a goodbye must get
through.

A firmware that closes its socket with bytes unread makes the kernel end the connection with
RST, not FIN, and the broker may then discard the DISCONNECT it had not read yet and publish the
will. The tutorial's ``c.disconnect()`` does that. Letting messages circulate before a Ctrl-C
only meets that moment by chance: whether an echo is unread when the Ctrl-C lands depends on
where the board is in its turn, so such a firmware passed some runs and failed others.

``deliver_then_stop`` makes the moment. It sends the board a stream of messages of its own, one
every ``STREAM_GAP_S``, waits for the record that the broker delivered the first to the board,
stops the board at once, and keeps the stream going until the board's connection has ended.
- A loop that reads on its own schedule (the tutorial's, and our reference mode) cannot have
  read the first message yet unless its next turn fell in the gap, and the next ones keep
  coming.
- A loop that reads each message the moment it arrives (our responsive mode) has an empty
  socket at the Ctrl-C; one message was not enough there, and a close at once escaped 5 runs in
  5. But the stream goes on while it closes: its goodbye takes milliseconds, and messages land
  in them unread.
Our firmware reads until the broker closes its side before it closes its own
(firmware/clean_disconnect.py), so it ends with FIN either way.

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
import threading
import time

import pytest

from rig.board import Board
from rig.errors import BrokerError, WaitTimeout
from rig.fixtures.contract import not_checked
from rig.host_client import HostClient
from rig.wire.records import BOARD, BROKER, TcpEnd, WirePacket
from rig.wire.witness import WireWitness

# The stream's pace: several messages land during a goodbye of a few milliseconds.
STREAM_GAP_S = 0.002
# At most this many messages (about 2 s of stream), whatever the board or the wire does.
STREAM_MAX = 1000
# Messages sent back to back right before the Ctrl-C: more than a loop that reads each the
# moment it arrives gets through before the Ctrl-C lands, so some are unread when it closes.
BURST = 32
# Without a wire that shows the end of the board's connection, the stream goes on this long
# after the Ctrl-C: a stimulus's length, not a wait for an event (the callers wait for those).
STREAM_AFTER_S = 0.5


def in_flight_payload(tag: str) -> bytes:
    """A fresh payload whose length is the tag's own: the wire records lengths, not payloads.
    Longer than the hello and the status words, so that over TLS their records are shorter."""
    return f"in flight: {tag} ".encode() + os.urandom(32).hex().encode()


class _Stream:
    """Messages to the board's echo topic, one every ``STREAM_GAP_S``, from ``start()`` until
    ``stop()`` or ``STREAM_MAX`` of them; all of one length (a four-digit count in the tag)."""

    def __init__(self, mqtt: HostClient, topic: str, tag: str) -> None:
        self.mqtt, self.topic, self.tag = mqtt, topic, tag
        self.length = len(in_flight_payload(f"{tag} 0000"))
        self.first = in_flight_payload(f"{tag} 0000")
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="in-flight-stream", daemon=True)

    def _run(self) -> None:
        for n in range(STREAM_MAX):
            data = self.first if n == 0 else in_flight_payload(f"{self.tag} {n:04d}")
            try:
                self.mqtt.publish(self.topic, data)
            except BrokerError:  # the host's own connection is not what this stimulus judges
                return
            if self._stopped.wait(STREAM_GAP_S):
                return

    def start(self) -> None:
        self._thread.start()

    def burst(self, count: int) -> None:
        """Send ``count`` messages back to back, from the caller's thread, beside the stream."""
        for n in range(count):
            self.mqtt.publish(self.topic, in_flight_payload(f"{self.tag} b{n:03d}"))

    def go_on(self, seconds: float) -> None:
        """Let the stream run ``seconds`` more (it may stop sooner, at ``STREAM_MAX``)."""
        self._stopped.wait(seconds)

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()


def publish_size(topic: str, data: bytes) -> int:
    """The bytes of a QoS 0 PUBLISH of ``data`` on ``topic``: fixed header (type byte and a
    remaining length of one byte below 128), topic length, topic, payload."""
    remaining = 2 + len(topic.encode()) + len(data)
    return 1 + (1 if remaining < 128 else 2) + remaining


def deliver_then_stop(
    board: Board, mqtt: HostClient, wire: WireWitness, timeout: float, tag: str, node: pytest.Item
) -> float:
    """Stream messages to the board, wait for the first one's delivery, press Ctrl-C, and stream
    on until the board's connection has ended. Returns the time just before the Ctrl-C (the start
    of the goodbye, for the records that follow)."""
    topic = board.config.echo_topic
    stream = _Stream(mqtt, topic, tag)
    since = time.time()
    stream.start()
    try:
        _wait_delivered(stream, mqtt, wire, timeout, since, node)
        stream.burst(BURST)
        stopped = time.time()
        board.interrupt()
        if wire.captured("the end of the board's connection") is None:
            wire.collect(
                lambda r: isinstance(r, TcpEnd) and r.sender == BOARD and r.t >= stopped, bool, timeout
            )
        else:
            stream.go_on(STREAM_AFTER_S)
    finally:
        stream.stop()
    return stopped


def _wait_delivered(
    stream: _Stream, mqtt: HostClient, wire: WireWitness, timeout: float, since: float, node: pytest.Item
) -> None:
    topic, length = stream.topic, stream.length
    what = f"the broker's delivery of {stream.first!r} to the board before the Ctrl-C"
    if wire.readable(what) is None:
        wire.wait_for(
            WirePacket,
            f"the broker's PUBLISH of a {length}-byte message to the board on {topic}",
            lambda p: p.sender == BROKER and p.kind == "PUBLISH" and p.topic == topic
            and p.payload_len == length and p.t >= since,
            timeout,
        )  # fmt: skip
    elif wire.captured(what) is None:
        size = publish_size(topic, stream.first)
        if not wire.collect(
            lambda r: isinstance(r, WirePacket) and r.sender == BROKER and r.length >= size and r.t >= since,
            bool,
            timeout,
        ):
            raise WaitTimeout(
                awaited=f"a TLS record of at least {size} bytes from the broker to the board (a "
                f"{length}-byte message) on the wire",
                timeout=timeout,
                last_seen=wire.tail(),
                log_path=wire.pcap_path,
            )
    else:
        not_checked(node, f"{wire.readable(what)}; the host's copy of it stands for it")
        mqtt.wait_count(topic, stream.first, 1, timeout, since=since)
