"""Run an amqtt broker from a JSON config file until SIGTERM or SIGINT.

Started by ``rig.broker.amqtt.AmqttBroker`` as ``python -m rig.broker.amqtt_runner CONFIG``. amqtt's
own CLI shuts down cleanly only on SIGINT and, when a listener cannot bind, keeps an idle event
loop running instead of exiting; this runner shuts down on SIGTERM (the rig's stop, and the
die-with-parent signal) and exits non-zero when the broker cannot start, so the parent sees the
failure at once rather than at the end of its readiness bound.

Exit codes: 0 after a clean stop, 2 for a bad command line or config, 3 when the broker could not
start (the log says why, e.g. "address already in use").

The runner also mends what amqtt 0.12.1 gets wrong for the rig (each fix names the flaw where it
is made): a subscriptions dict that changes while it is walked, a CONNECT refused only after its
session was taken over (``rig.broker.amqtt_auth.AuthFirstHandler``), retained messages sent on
CONNECT for every topic filter any client holds, queued messages delivered as retained, and
retained or queued messages handed to a client without asking the topic plugins whether it may
receive them. Without topic plugins (no access policy) the topic checks admit everything.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import weakref
from collections.abc import ItemsView, Iterator, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from rig.settings import AMQTT_DEBUG

# amqtt's shutdown waits up to 5 s for its broadcast loop; the parent's stop() bound is 5 s by
# default, so give up earlier and let the process exit on its own.
_SHUTDOWN_BOUND_S = 3.0
# One greppable format: "date time LEVEL [logger] message".
LOG_FORMAT = "%(asctime)s %(levelname)s [%(name)s] %(message)s"
# Set to 1 for amqtt's DEBUG log (every packet, a CONNECT's password masked; every routing step):
# about 1.3 MB in 8 minutes of `rig up`. Without it the log is at INFO: connections, refusals,
# the runner's own lines. Nothing of the rig reads the log's text; its evidence is the records
# (rig.broker.amqtt_plugin), written at either level.
DEBUG_ENV = AMQTT_DEBUG.env

_log = logging.getLogger("rig.broker.amqtt_runner")

# Set while amqtt handles a SUBSCRIBE (per task: each client connection is one): retained messages
# are sent then and only then (RigBroker._publish_retained_messages_for_subscription).
_ANSWERING_SUBSCRIBE: ContextVar[bool] = ContextVar("answering_subscribe", default=False)


class _SnapshotDict(dict[str, Any]):
    """amqtt's subscriptions (topic filter -> list of (session, qos)), walked over a copy so that
    they may change while they are walked: iteration over a copy of the keys, ``items()`` over a
    copy of the entries, each list copied too."""

    def __iter__(self) -> Iterator[str]:
        return iter(list(self.keys()))

    def items(self) -> ItemsView[str, Any]:  # type: ignore[override]  # a view, of a copy
        return {key: list(value) for key, value in dict.items(self)}.items()


def _broker_class() -> type[Any]:
    """amqtt's Broker with the rig's fixes; ImportError without amqtt."""
    import amqtt.broker
    from amqtt.contexts import Action
    from amqtt.events import BrokerEvents

    from rig.broker.amqtt_auth import AuthFirstHandler

    # The broker reads the CONNECT through this name: with it, a refused client is refused before
    # the broker looks up (and takes over) the session of its client id.
    amqtt.broker.BrokerProtocolHandler = AuthFirstHandler

    class RigBroker(amqtt.broker.Broker):  # type: ignore[misc]  # amqtt ships no type hints
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            # The handlers of connections closed by a take-over (see _handle_disconnect).
            self._taken_over_handlers: weakref.WeakSet[Any] = weakref.WeakSet()

        async def _handle_subscription(
            self, client_session: Any, handler: Any, subscribe_waiter: Any
        ) -> None:
            # amqtt's own handling (SUBACK, then the retained messages of each accepted filter),
            # marked as the answer to a SUBSCRIBE for _publish_retained_messages_for_subscription.
            token = _ANSWERING_SUBSCRIBE.set(True)
            try:
                await super()._handle_subscription(client_session, handler, subscribe_waiter)
            finally:
                _ANSWERING_SUBSCRIBE.reset(token)

        async def _publish_retained_messages_for_subscription(
            self, subscription: tuple[str, int], session: Any
        ) -> None:
            """The retained messages matching ``subscription``, sent in answer to its SUBSCRIBE only.

            amqtt 0.12.1 calls this on SUBSCRIBE and also on every CONNECT, for every topic
            filter that ANY client holds (``Broker._handle_client_session``): a board resuming
            its session got the retained status of its own topic, which only the host's
            ``rig/BOARD/#`` covers, and echoed it back unretained, so the bench page showed
            ``lost`` or ``offline`` for a board that was online. MQTT 3.1.1 [MQTT-3.3.1-6] and
            mosquitto send retained messages only when a subscription is made, for its filter:
            the CONNECT call sends nothing. Each message also passes the topic plugins' RECEIVE
            check (amqtt asks none here), so no client gets a retained message it may not read."""
            if not _ANSWERING_SUBSCRIBE.get():
                return
            topic_filter, qos = subscription
            handler = self._get_handler(session)
            if handler is None:
                return
            sends = []
            for topic, retained in list(self._retained_messages.items()):
                if not self._matches(topic, topic_filter):
                    continue
                if not await self._topic_filtering(session, topic=topic, action=Action.RECEIVE):
                    continue
                qos_out = min(qos, retained.qos or qos)
                send = handler.mqtt_publish(retained.topic, retained.data, qos_out, retain=True)
                sends.append(asyncio.ensure_future(send))
            if sends:
                await asyncio.wait(sends)

        async def _publish_session_retained_messages(self, session: Any) -> None:
            """The messages queued for a persistent session while it was offline, sent when it
            resumes: with RETAIN 0, and only those its current login may receive.

            amqtt 0.12.1 sends them with RETAIN 1, as if they were the topics' retained
            messages; MQTT 3.1.1 [MQTT-3.3.1-9] and mosquitto send a message that matched an
            established subscription with RETAIN 0. They were checked against the user
            connected then; a client that resumes the session with another login gets only
            those it may receive itself."""
            handler = self._get_handler(session)
            if handler is None:
                return
            sends = []
            while not session.retained_messages.empty():
                queued = await session.retained_messages.get()
                if await self._topic_filtering(session, topic=queued.topic, action=Action.RECEIVE):
                    send = handler.mqtt_publish(queued.topic, queued.data, queued.qos, retain=False)
                    sends.append(asyncio.ensure_future(send))
            if sends:
                await asyncio.wait(sends)

        async def _handle_client_session(
            self,
            reader: Any,
            writer: Any,
            client_session: Any,
            handler: Any,
            server: Any,
            listener_name: str,
        ) -> None:
            # A persistent session still connected is about to be taken over: amqtt closes the
            # older connection's handler (during which that connection's task ends it) before
            # it registers the newer one, so the older handler is marked here, first.
            current = self._sessions.get(client_session.client_id)
            if (
                current is not None
                and current[0] is client_session
                and client_session.transitions.is_connected()
            ):
                self._taken_over_handlers.add(current[1])
            await super()._handle_client_session(
                reader, writer, client_session, handler, server, listener_name
            )

        async def _handle_disconnect(self, client_session: Any, handler: Any, disconnect_waiter: Any) -> None:
            """The end of one connection; the end of its session only if no newer connection
            took that session over.

            On a take-over of a persistent session, amqtt 0.12.1 gives the newer connection the
            same session object and closes the older one; the older connection's task then
            ends "the client's session": it sends the will (the newer CONNECT's, copied onto
            the shared session) and marks the session disconnected while the newer connection
            is live, so every message for the board was queued instead of sent until its next
            reconnect (an echo lost after a link-down fault, 1 run in 20). mosquitto 2.0
            (handle_connect.c) clears the will of a persistent session taken over by a
            persistent CONNECT and leaves the session to the newer connection: so here."""
            if handler not in self._taken_over_handlers:
                await super()._handle_disconnect(client_session, handler, disconnect_waiter)
                return
            self._taken_over_handlers.discard(handler)
            _log.info(
                "connection of %r taken over: its session stays with the newer connection",
                client_session.client_id,
            )
            await self._stop_handler(handler)
            await self.plugins_manager.fire_event(
                BrokerEvents.CLIENT_DISCONNECTED,
                client_id=client_session.client_id,
                client_session=client_session,
            )

        async def _cleanup_session(self, client_id: str) -> None:
            # By the session monitor (a disconnected session, clean or anonymous) or at shutdown.
            # amqtt logs it ("Expired N sessions") at DEBUG only and without the client id; a
            # session's end belongs in the log at the default level.
            await super()._cleanup_session(client_id)
            _log.info("session of %r deleted", client_id)

    return RigBroker


async def _serve(config: dict[str, Any]) -> int:
    try:
        # Imported here, after logging is set up, so that a missing amqtt is a log line.
        broker_class = _broker_class()
    except ImportError as exc:
        _log.error("amqtt is not importable by %s: %s", sys.executable, exc)
        return 2
    try:
        broker = broker_class(config)
        # amqtt 0.12.1 walks its subscriptions dict, awaiting inside the loop, while it sends a
        # reconnecting client the retained messages of every topic (broker.py, _client_connected)
        # and while it routes each message (_run_broadcast, which awaits the topic plugins, so
        # only with an access policy). A client subscribing or leaving meanwhile raised
        # "dictionary changed size during iteration": the reconnecting client never got its
        # SUBACK, the message never reached the remaining subscribers. Iterate over a snapshot.
        broker._subscriptions = _SnapshotDict(broker._subscriptions)
        await broker.start()
    except Exception:
        _log.exception("amqtt broker could not start")
        return 3
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    _log.info("amqtt broker running")
    await stop.wait()
    _log.info("amqtt broker stopping")
    # amqtt 0.12.1 closes its listeners last, after cleaning up every session, and takes new
    # connections meanwhile: a board reconnecting then got a CONNACK from a broker about to go,
    # or a hang-up before it, and the process then outlived its stop bound. Stop accepting
    # first, as mosquitto does (the websocket listener closes with amqtt's own shutdown).
    for server in broker._servers.values():
        if isinstance(server.instance, asyncio.Server):
            server.instance.close()
    try:
        await asyncio.wait_for(broker.shutdown(), _SHUTDOWN_BOUND_S)
    except Exception:  # asyncio.TimeoutError included: either way, exit now
        _log.exception("amqtt broker did not shut down cleanly")
    _log.info("amqtt broker stopped")
    return 0


def log_level(environ: Mapping[str, str]) -> int:
    """DEBUG when ``DEBUG_ENV`` is 1, else INFO."""
    return logging.DEBUG if environ.get(DEBUG_ENV, "").strip() == "1" else logging.INFO


def main(argv: list[str]) -> int:
    logging.basicConfig(level=log_level(os.environ), format=LOG_FORMAT, stream=sys.stderr)
    # transitions logs every state machine step of every session: noise, not evidence.
    logging.getLogger("transitions").setLevel(logging.WARNING)
    # websockets dumps the bytes of every frame at DEBUG, a CONNECT's password among them (in hex);
    # the packet logger already shows every packet, with the password masked.
    logging.getLogger("websockets").setLevel(logging.INFO)
    if len(argv) != 1:
        _log.error("usage: python -m rig.broker.amqtt_runner CONFIG.json")
        return 2
    try:
        config = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        _log.error("cannot read config %s: %s", argv[0], exc)
        return 2
    return asyncio.run(_serve(config))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
