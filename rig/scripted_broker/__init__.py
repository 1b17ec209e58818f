"""A broker that misbehaves on purpose: a small MQTT 3.1.1 server that plays a scenario against
the board packet by packet, as mosquitto's client-library tests (``test/lib``) do for a library.

- ``packets``: what it sends, well formed or broken (its own encoder: it says why);
- ``decode``: what the board sends, framed here and decoded by scapy;
- ``connection``: one connection, read by a thread, served well or held by a scenario;
- ``broker``: the listener that hands connections to the scenario or to the good service;
- ``scenario``: the steps and their bounded waits;
- ``scenarios``: the catalogue, each named for the MQTT 3.1.1 statement it exercises.
"""

from rig.scripted_broker.broker import ScriptedBroker
from rig.scripted_broker.scenario import Scenario, ScenarioFailed
from rig.scripted_broker.scenarios import Timing, catalogue

__all__ = ["Scenario", "ScenarioFailed", "ScriptedBroker", "Timing", "catalogue"]
