"""amqtt broker plugins of the rig's: broker records, and a packet log without passwords.

``BrokerRecordsPlugin`` writes what the broker received and answered as broker records.

Loaded by amqtt inside the rig's broker child (``rig.broker.amqtt_runner``), never by the rig
itself: ``rig.broker.amqtt.AmqttBroker`` names it in the broker's config with the file to write
(``{"path": ...}``). It sees the packets themselves through amqtt's ``on_mqtt_packet_received`` /
``on_mqtt_packet_sent`` hooks, and the end of a connection through
``on_broker_client_disconnected``; each record is one JSON line (``rig.broker.records.to_json``),
flushed at once so the host reads it while the broker runs. Nothing here reads amqtt's log text.

amqtt fires plugin hooks as tasks in the order it reaches them, and these handlers never await,
so the records are written in the order the broker handled the packets. A record of a CONNECT
names the user, never the password.

Every record carries the run of the broker that wrote it (``epoch``, ``rig.broker.records``): the
plugin counts the starts its file already holds and takes the next number, so that the records
a broker writes while it shuts down (amqtt still accepts connections then) are never taken for
those of the broker started after it, which appends to the same file.

``RedactedPacketLoggerPlugin`` is amqtt's ``PacketLoggerPlugin`` (every packet at DEBUG, into
amqtt.log) with the password of a CONNECT masked: amqtt's CONNECT ``repr`` shows it in clear.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

from amqtt.mqtt.connack import ConnackPacket
from amqtt.mqtt.connect import ConnectPacket
from amqtt.mqtt.disconnect import DisconnectPacket
from amqtt.mqtt.pingreq import PingReqPacket
from amqtt.mqtt.subscribe import SubscribePacket
from amqtt.mqtt.unsubscribe import UnsubscribePacket
from amqtt.plugins.base import BasePlugin
from amqtt.plugins.logging_amqtt import PacketLoggerPlugin

from rig.broker.records import (
    BrokerRecord,
    BrokerStarted,
    BrokerStopped,
    Connack,
    Connect,
    Disconnect,
    Ended,
    EndReason,
    PingReq,
    RecordKind,
    Subscribe,
    TopicFilter,
    Unsubscribe,
    Will,
    to_json,
)


@dataclass
class _Connection:
    # Whether a DISCONNECT arrived on this connection: the one thing that tells a goodbye from a
    # connection that just ended (amqtt passes neither to the disconnect hook).
    disconnect: bool = False
    # Whether amqtt accepted a newer connection with this client id while this one was live:
    # it closes this one to let the newer in (its "take-over").
    taken_over: bool = False


class BrokerRecordsPlugin(BasePlugin):  # type: ignore[misc]  # amqtt ships no type hints
    """Lifecycle: amqtt creates it when the broker starts and calls ``close()`` at shutdown."""

    @dataclass
    class Config:
        path: str = ""

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self.epoch = runs_in(Path(self.config.path)) + 1
        self._file: IO[str] | None = open(self.config.path, "a", encoding="utf-8")  # noqa: SIM115
        # Per client id, its live connections from the oldest: the oldest is the one that ends.
        self._connections: dict[str, list[_Connection]] = {}
        # A CONNECT arrives before amqtt has a session for it; its CONNACK may be refused
        # before one exists too.
        self._last_connect = ""

    def _write(self, record: BrokerRecord) -> None:
        if self._file is None:
            return
        record = replace(record, epoch=self.epoch)
        self._file.write(json.dumps(to_json(record)) + "\n")
        self._file.flush()

    async def on_broker_post_start(self, **_: Any) -> None:
        self._write(BrokerStarted("", time.time()))

    async def on_broker_pre_shutdown(self, **_: Any) -> None:
        self._write(BrokerStopped("", time.time()))

    async def on_mqtt_packet_received(self, *, packet: Any, session: Any = None, **_: Any) -> None:
        now = time.time()
        if isinstance(packet, ConnectPacket):
            client = packet.client_id or ""
            self._last_connect = client
            self._connections.setdefault(client, []).append(_Connection())
            will = None
            if packet.will_flag:
                will = Will(packet.will_topic or "", int(packet.will_qos or 0), bool(packet.will_retain_flag))
            self._write(
                Connect(
                    client,
                    now,
                    clean_session=bool(packet.clean_session_flag),
                    keepalive=int(packet.keep_alive),
                    will=will,
                    username=packet.username if packet.username_flag else None,
                )
            )
            return
        client = str(session.client_id) if session is not None else ""
        if isinstance(packet, SubscribePacket):
            topics = tuple(TopicFilter(str(t), int(q)) for t, q in packet.payload.topics)
            self._write(Subscribe(client, now, topics=topics))
        elif isinstance(packet, UnsubscribePacket):
            self._write(Unsubscribe(client, now, topics=tuple(str(t) for t in packet.payload.topics)))
        elif isinstance(packet, PingReqPacket):
            self._write(PingReq(client, now))
        elif isinstance(packet, DisconnectPacket):
            live = self._connections.get(client)
            if live:
                live[-1].disconnect = True
            self._write(Disconnect(client, now))

    async def on_mqtt_packet_sent(self, *, packet: Any, session: Any = None, **_: Any) -> None:
        if not isinstance(packet, ConnackPacket):
            return
        client = str(session.client_id) if session is not None else self._last_connect
        code = int(packet.return_code or 0)
        live = self._connections.get(client)
        if live and code != 0:
            # Refused: this connection ends here, and amqtt fires no disconnect for it.
            live.pop()
        elif live:
            # Accepted while older connections of this client id have not ended: amqtt only
            # accepts a connection for a session that is still connected by taking it over.
            for older in live[:-1]:
                older.taken_over = True
        self._write(
            Connack(client, time.time(), session_present=bool(packet.session_parent), return_code=code)
        )

    async def on_broker_client_disconnected(self, *, client_id: str, **_: Any) -> None:
        live = self._connections.get(client_id) or [_Connection()]
        ended = live.pop(0)
        if ended.disconnect:
            how, detail = EndReason.DISCONNECT, "DISCONNECT received"
        elif ended.taken_over:
            how, detail = EndReason.TAKEN_OVER, "a newer connection with this client id took over"
        else:
            how, detail = EndReason.CLOSED, "the connection ended without DISCONNECT"
        if not live:
            self._connections.pop(client_id, None)
        self._write(Ended(client_id, time.time(), how=how, detail=detail))

    async def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def runs_in(path: Path) -> int:
    """How many broker starts the records file ``path`` holds (0 when there is none yet)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return 0
    started = RecordKind.BROKER_STARTED.value
    count = 0
    for line in lines:
        try:
            count += json.loads(line).get("kind") == started
        except (ValueError, AttributeError):
            continue  # a line cut short by a killed broker: no start of its own
    return count


MASK = "***"


class RedactedPacketLoggerPlugin(PacketLoggerPlugin):  # type: ignore[misc]
    """Logs every packet as amqtt's packet logger does, a CONNECT's password masked."""

    async def on_mqtt_packet_received(self, *, packet: Any, session: Any = None, **_: Any) -> None:
        if not self.context.logger.isEnabledFor(logging.DEBUG):
            return
        shown = repr(packet)
        if isinstance(packet, ConnectPacket) and packet.password:
            field = f"password={packet.password})"
            # The field as amqtt 0.12 shows it; failing that, every occurrence of the password.
            if field in shown:
                shown = shown.replace(field, f"password={MASK})")
            else:
                shown = shown.replace(packet.password, MASK)
        who = f"{session.client_id} " if session is not None else ""
        self.context.logger.debug(f"{who}<-in-- {shown}")
