"""The wire as a witness: what passed between the virtual board and the broker, packet by packet.

- ``capture``: one ``tcpdump`` per session on the host end of the board's veth link
  (``rig.netns``), started and stopped by the rig by PID;
- ``link``: the same capture on the host's interface toward a board the rig does not start
  (``capture_interface`` in boards.yaml), filtered to the broker's ports and the board's address;
- ``pcap``: reading and slicing the capture file, each test's share written as a pcap file
  that Wireshark opens;
- ``tcp``: the TCP segment in a captured frame (headers, payload, checksum);
- ``mask``: the run's secrets masked over each TCP stream of a test's share, however the
  segments cut them;
- ``decode``: the TCP streams reassembled and split into MQTT packets, decoded with scapy's
  MQTT 3.1.1 layer into ``records.WirePacket`` and ``records.TcpEnd``;
- ``witness``: one test's view: its share, its records, the reason when there is no wire.

docs/wire.md says what each check judges on and what it falls back to.
"""

from rig.wire.records import TcpEnd, WirePacket, WireRecord

__all__ = ["TcpEnd", "WirePacket", "WireRecord"]
