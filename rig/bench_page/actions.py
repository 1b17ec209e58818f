"""What the page's inject box and buttons may ask of the bench: a small protocol that the live
bench (``rig up``) implements with the real board and broker, and a replay implements with
nothing (every action unavailable, saying why)."""

from __future__ import annotations

from typing import Protocol

# The buttons, by the name the page posts; each does what the rig already does in the suite.
ACTIONS = {
    "soft_reset": "soft reset (Ctrl-D): the firmware restarts",
    "interrupt": "Ctrl-C: the firmware disconnects cleanly and stops at the REPL",
    "power_cut": "power cut: the board loses power and boots again",
}


class ActionUnavailable(Exception):
    """The action cannot be done on this bench; the message says why (shown on the page)."""


class BenchActions(Protocol):
    def unavailable(self) -> dict[str, str]:
        """Action name -> why it cannot be done here; an action not named is available."""

    def inject(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        """Publish ``payload`` on ``topic`` as the page's injector would; raises
        ``ActionUnavailable`` (a topic outside the board's, a replay) or a ``RigError``."""

    def run(self, action: str) -> str:
        """Do one of ``ACTIONS``; returns what was done, for the page; raises
        ``ActionUnavailable`` or a ``RigError``."""
