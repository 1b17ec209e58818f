"""Hardware-in-the-loop test rig for MicroPython MQTT firmware.

Layers, one subpackage each:

- ``rig.board``: what a board is and how it is reached (USB or the virtual board), as a port URL;
- ``rig.serialio``: the one owner of a board's serial port, its capture and ``expect``;
- ``rig.deploy``: putting ``firmware/`` and its dependencies on a board with mpremote;
- ``rig.broker``: the MQTT broker the board talks to;
- ``rig.mqtt``: the host-side MQTT client that injects and records messages;
- ``rig.plugin``: the pytest plugin that ties them together.
"""

__version__ = "0.1.0"
