"""An amqtt authentication plugin that admits every client as who it says it is.

amqtt's own ``AnonymousAuthPlugin`` (with ``allow_anonymous``) marks every session it admits as
anonymous, even one that gave a username, and amqtt 0.12's session monitor deletes a disconnected
anonymous session within a second: a board that said DISCONNECT and came back a second later
found no session (CONNACK session present = 0), although it connected with clean_session=0.
MQTT 3.1.1 [MQTT-3.1.2-4] says the broker resumes that session, and mosquitto does. The rig's
private broker checks no credentials either way (mosquitto runs with ``allow_anonymous true``).

Loaded by amqtt inside the broker child, named in the config ``rig.broker.amqtt.AmqttBroker``
writes.
"""

from __future__ import annotations

from typing import Any

from amqtt.plugins.base import BaseAuthPlugin


class AdmitAllAuthPlugin(BaseAuthPlugin):  # type: ignore[misc]  # amqtt ships no type hints
    async def authenticate(self, *, session: Any = None, **_: Any) -> bool:
        return True
