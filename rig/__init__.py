"""Hardware-in-the-loop test rig for MicroPython MQTT firmware.

The host side, in layers that ``.importlinter`` states and the lint environment checks
(docs/architecture.md says what each is for). Among them:

- ``rig.board``: what a board is and how it is reached (USB, the virtual board, a labgrid place);
- ``rig.serialio``: the one owner of a board's serial port, its capture and ``expect``;
- ``rig.deploy``: putting ``firmware/`` and its dependencies on a board with mpremote;
- ``rig.strategy``: a board from unknown to a running firmware;
- ``rig.broker``: the MQTT broker the board talks to, and what it saw (its records);
- ``rig.host_client``: the host's paho-mqtt client that injects and records messages;
- ``rig.contract``: what a firmware declares it does (``rig-contract.yaml`` next to it);
- ``rig.testbed``: one broker plus one board, ready to test, for the plugin and every command;
- ``rig.plugin`` and ``rig.cli``: the pytest plugin and the ``rig`` command.
"""

__version__ = "0.1.0"
