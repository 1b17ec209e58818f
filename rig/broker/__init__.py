"""The MQTT broker the board and the tests talk to.

``make_broker(kind, workdir)`` returns a ``Broker``: a private mosquitto or amqtt subprocess on free
loopback ports (MQTT over TCP and over WebSocket), or an external broker the user runs. A managed
broker gives *records* of what it received and answered for each client (``rig.broker.records``:
CONNECT, CONNACK, SUBSCRIBE, UNSUBSCRIBE, PINGREQ, DISCONNECT, how a connection ended, so a test
can tell a clean DISCONNECT from a dropped connection), each stamped with the run of the broker
that wrote it, read with ``Broker.record_follower()``: mosquitto's parsed from its log
(``mosquitto_records``, the one parser of that log), amqtt's written by a plugin inside the broker
(``amqtt_plugin``; its DEBUG log is never parsed).
"""

from rig.broker.amqtt import AmqttBroker
from rig.broker.base import Broker, BrokerKind
from rig.broker.external import ExternalBroker
from rig.broker.factory import make_broker
from rig.broker.managed import ManagedBroker
from rig.broker.mosquitto import MosquittoBroker

__all__ = [
    "AmqttBroker",
    "Broker",
    "BrokerKind",
    "ExternalBroker",
    "ManagedBroker",
    "MosquittoBroker",
    "make_broker",
]
