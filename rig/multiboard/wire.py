"""Each board's wire in a test of several boards: a link of its own, captured for the test.

The single board of a run gets a link of its own (``rig.netns``) and its session's capture
(``rig.fixtures.wire``); the boards of a group get the same, each for the test: a virtual board
runs in its own network namespace, the group's broker (on this machine's loopback) is relayed
onto the host end of its veth (``BoardNetwork.reach``, what a router's port forward does for a
board on Wi-Fi), and a ``tcpdump`` on that host end (``rig.wire.capture``) sees every packet the
board sends or receives, and nothing of the other boards. So a test can count what each board
sent (``boards.a.wire.packets("CONNECT", "board")``) on any broker, whatever the broker records.

A group with a board on the bench network (its broker then listens on the bench address, which a
namespace cannot reach) keeps every board on this machine's network; there, and where namespaces
or tcpdump are missing, each board's ``wire`` says why it has no witness (``unavailable``), as a
USB board's does.

Lifecycle: ``own_links(specs)`` decides before the boards start; ``BoardLink.open(...)`` once the
board runs (its namespace exists), before its firmware: the broker reached, tcpdump listening;
``close()`` writes the board's ``wire.pcap`` (secrets masked), ``wire.jsonl`` and its timeline's
wire rows, then stops tcpdump by PID and removes the raw file. The relay ends with the board's
namespace, when the board stops.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from rig import netns
from rig.board.board import Board
from rig.board.virtual import VirtualBoard
from rig.broker import Broker
from rig.evidence.timeline import Timeline
from rig.inventory import BoardSpec
from rig.wire import capture as wire_capture
from rig.wire.capture import WireCapture
from rig.wire.witness import WireWitness


def own_links(specs: Sequence[BoardSpec]) -> str | None:
    """None when the group's boards each get a link of their own; else why they share this
    machine's network (and have no wire witness)."""
    on_network = [spec.name for spec in specs if not spec.traits.started_here]
    if on_network:
        return (
            f"board {on_network[0]} reaches the broker over a link of its own (its radio, or another "
            "host's), so the group's broker listens on the bench network, out of a namespace's reach: "
            "the boards share this machine's network and the rig captures no board's link"
        )
    return netns.unavailable()


class BoardLink:
    """One board's link in a group and its capture for the test; ``witness`` is its ``wire``."""

    def __init__(self, witness: WireWitness, capture: WireCapture | None) -> None:
        self.witness = witness
        self._capture = capture

    @classmethod
    def open(
        cls,
        board: Board,
        broker: Broker,
        folder: Path,
        timeline: Timeline,
        secrets: Callable[[], Iterable[str]],
        why_not: str | None,
    ) -> BoardLink:
        """The broker reached from ``board``'s link and that link captured; or a witness that
        says why not (``why_not``: the group's reason, see ``own_links``)."""
        transport = board.transport
        network = transport.network if isinstance(transport, VirtualBoard) else None
        if why_not is None and network is None:
            why_not = (
                f"board {board.name} reaches the broker over a link of its own (its radio, or another "
                "host's): the rig captures only a virtual board's veth"
            )
        why_not = why_not or wire_capture.unavailable()

        def add(t: float, src: str, text: str, fields: dict[str, object]) -> None:
            timeline.add(t, src, text, wire=fields)

        if why_not is not None or network is None:
            return cls(WireWitness(None, folder, unavailable=why_not), None)
        network.reach(broker.host, broker.port)
        capture = WireCapture(network.host_if, network.board_address, {broker.port: False})
        capture.start()
        witness = WireWitness(capture, folder, secrets=secrets, add_to_timeline=add)
        return cls(witness, capture)

    def close(self) -> None:
        """Keep the test's share, then stop tcpdump (by PID) and remove the raw file."""
        try:
            self.witness.close()
        finally:
            if self._capture is not None:
                self._capture.stop()
