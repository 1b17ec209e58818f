"""Who amqtt admits, and to which topics: the rig's plugins, and a CONNECT handler that refuses
before anything of a session is touched.

Loaded by amqtt inside the broker child (``rig.broker.amqtt_runner``), named in the config
``rig.broker.amqtt.AmqttBroker`` writes:

- without an ``AccessPolicy``: ``AdmitAllAuthPlugin`` and no topic plugin, so every client and
  every topic is admitted, like mosquitto with ``allow_anonymous true``;
- with one: ``PolicyAuthPlugin`` (the password file of ``rig.broker.amqtt_access``, and the client
  id each bound user must connect with) and
  ``PrefixAclPlugin`` (each user its prefixes, to subscribe, to publish and to receive).

Neither auth plugin marks a session anonymous. amqtt's own ``AnonymousAuthPlugin`` (with
``allow_anonymous``) marks every session it admits as anonymous, even one that gave a username,
and amqtt 0.12's session monitor deletes a disconnected anonymous session within a second: a
board that said DISCONNECT and came back a second later found no session (CONNACK session
present = 0), although it connected with clean_session=0. MQTT 3.1.1 [MQTT-3.1.2-4] says the
broker resumes that session, and mosquitto does.

amqtt refuses a client only with CONNACK 5 (not authorized), and only after it has taken over
the session of the CONNECT's client id: a refused CONNECT with clean_session=1 deletes that
session and its subscriptions, and one with clean_session=0 closes the connection that holds it
and overwrites its will and username. So a client with no password could cut a board off its
broker. ``AuthFirstHandler`` (installed by the runner) asks the auth plugins as soon as the
CONNECT is read and refuses right there, the way amqtt refuses a CONNECT of the wrong protocol
version: no session is looked at. mosquitto, too, checks the login before it looks for a session.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amqtt.errors import MQTTError
from amqtt.events import MQTTEvents
from amqtt.mqtt.connack import NOT_AUTHORIZED, ConnackPacket
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.plugins.base import BaseAuthPlugin
from amqtt.plugins.topic_checking import TopicAccessControlListPlugin

from rig.broker.amqtt_access import client_id_file, read_client_ids, read_password_file

# The CONNACK code of a refusal: amqtt's only one for a plugin's "no", and mosquitto 2.0's for an
# MQTT 3.1.1 client that is anonymous or gave a wrong password alike.
REFUSED = NOT_AUTHORIZED


class AdmitAllAuthPlugin(BaseAuthPlugin):  # type: ignore[misc]  # amqtt ships no type hints
    """Admits every client as who it says it is: the broker without an access policy."""

    async def authenticate(self, *, session: Any = None, **_: Any) -> bool:
        return True


class PolicyAuthPlugin(BaseAuthPlugin):  # type: ignore[misc]
    """Admits a client whose user name is in the password file, whose password matches its
    hash, and whose client id is the one its user is bound to (if it is bound: the boards'
    accounts are, so board X's login cannot take over board Y's session); refuses anonymous
    clients and everyone else.

    Lifecycle: amqtt creates it when the broker starts; it reads the files then, once (the rig
    rewrites them before each start, never while the broker runs)."""

    @dataclass
    class Config:
        password_file: str = ""

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        password_file = Path(self.config.password_file)
        self._hashes = read_password_file(password_file)
        self._client_ids = read_client_ids(client_id_file(password_file))
        self.context.logger.info(
            "%d account(s) loaded, %d bound to a client id", len(self._hashes), len(self._client_ids)
        )

    async def authenticate(self, *, session: Any = None, **_: Any) -> bool:
        user = getattr(session, "username", None)
        if not user:
            self.context.logger.info("refused: anonymous")
            return False
        known = self._hashes.get(user)
        if known is None or not known.matches(getattr(session, "password", None) or ""):
            # Never the password in the log: not even a wrong one, which may be a mistyped right one.
            why = "unknown user" if known is None else "wrong password"
            self.context.logger.info("refused: user %r, %s", user, why)
            return False
        bound = self._client_ids.get(user)
        client_id = getattr(session, "client_id", None)
        if bound is not None and client_id != bound:
            self.context.logger.info(
                "refused: user %r with client id %r, bound to %r", user, client_id, bound
            )
            return False
        return True


class PrefixAclPlugin(TopicAccessControlListPlugin):  # type: ignore[misc]
    """amqtt's ACL plugin with all three of its ACLs: what each user may subscribe to, publish
    to, and receive (checked on every delivery, so a session taken over by another user gets
    nothing the new user may not read).

    The shipped plugin reads ``subscribe-acl`` and ``receive-acl`` but its ``Config`` declares
    neither (only ``publish_acl`` and the deprecated ``acl``), so the config dict amqtt loads it
    from cannot give them: this subclass only declares them. Users not named are denied all."""

    @dataclass
    class Config:
        publish_acl: dict[str, list[str]] = field(default_factory=dict)
        subscribe_acl: dict[str, list[str]] = field(default_factory=dict)
        receive_acl: dict[str, list[str]] = field(default_factory=dict)


async def authenticated(plugins_manager: Any, session: Any) -> bool:
    """The broker's rule (``Broker._authenticate``): admitted when at least one auth plugin
    answered and every answer was yes."""
    answers = await plugins_manager.map_plugin_auth(session=session)
    results = [result for result in answers.values() if result is not None]
    return bool(results) and all(results)


class AuthFirstHandler(BrokerProtocolHandler):  # type: ignore[misc]
    """amqtt's broker protocol handler, refusing a CONNECT before the broker looks up its session.

    The runner puts it in place of ``amqtt.broker.BrokerProtocolHandler``. An admitted client is
    asked again by the broker itself, with the same login, and admitted again."""

    @classmethod
    async def init_from_connect(
        cls,
        reader: Any,
        writer: Any,
        plugins_manager: Any,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> tuple[Any, Any]:
        handler, session = await super().init_from_connect(reader, writer, plugins_manager, loop)
        if await authenticated(plugins_manager, session):
            return handler, session
        # Session present 0 on a refusal [MQTT-3.2.2-4]; amqtt's records hook sees it without a
        # session, as it sees its own protocol refusals.
        connack = ConnackPacket.build(0, REFUSED)
        await plugins_manager.fire_event(MQTTEvents.PACKET_SENT, packet=connack)
        await connack.to_stream(writer)
        await writer.close()
        raise MQTTError(f"client {session.client_id!r} not authorized: CONNACK {REFUSED}")
