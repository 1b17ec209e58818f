"""The MQTT broker the board and the tests talk to.

``make_broker(kind, workdir)`` returns a ``Broker``: a private mosquitto or amqtt subprocess on free
loopback ports (MQTT over TCP and over WebSocket), or an external broker the user runs. A managed
broker's log is parsed into ``ClientEvent``s, so a test can tell a clean DISCONNECT from a dropped
connection. A managed broker also gives *records* of what it received and answered for each
client (``rig.broker.records``: CONNECT, CONNACK, SUBSCRIBE, UNSUBSCRIBE, PINGREQ, DISCONNECT, how
a connection ended), read with ``Broker.record_follower()``: mosquitto's from its log
(``mosquitto_records``), amqtt's from a plugin inside the broker (``amqtt_plugin``).
"""

from rig.broker.amqtt import AmqttBroker
from rig.broker.base import Broker, BrokerKind
from rig.broker.events import ClientEvent, EventKind
from rig.broker.external import ExternalBroker
from rig.broker.factory import make_broker
from rig.broker.managed import ManagedBroker
from rig.broker.mosquitto import MosquittoBroker

__all__ = [
    "AmqttBroker",
    "Broker",
    "BrokerKind",
    "ClientEvent",
    "EventKind",
    "ExternalBroker",
    "ManagedBroker",
    "MosquittoBroker",
    "make_broker",
]
