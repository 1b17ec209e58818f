"""When the board is back: the witness a test waits for before it injects, on any broker.

After a reset or a power cut the firmware boots, connects and only then receives what is
published to it: a message injected earlier is lost (QoS 0, nothing queued). On the rig's own
broker the broker's CONNECT record says when the board is back; an external broker keeps no
records, so a test that waited only on them would skip there at once and leave the board
booting under the next test's injection. The host client's own view is on every broker: the
board's status topic, whose last word is ``online`` once the firmware is connected (the retained
one handed to the host's subscription, or a new one); for a firmware without a status topic, the
hello its contract declares, published after the restart.

A board that does not come back is named by its console when it says why (``wifi_failed``,
``broker_unreachable``: ``rig.offline_reason``): "the board did not join Wi-Fi (...)" or "the
board joined Wi-Fi but did not reach the broker at host:port (...)".
"""

from __future__ import annotations

from rig.board import Board
from rig.errors import WaitTimeout
from rig.fixtures.contract import reset_seen_at
from rig.host_client import HostClient, Message
from rig.offline_reason import offline_error, why_offline
from rig.serial_events import parse_event


def wait_online(mqtt: HostClient, board: Board, timeout: float, since: float = 0.0) -> None:
    """Wait until the host has seen ``board`` connected at or after ``since`` (a restart's
    start: what the connection before it said does not count).

    The witness is the board's last status being ``online``; with ``since`` 0 a board that runs
    passes at once, on its retained ``online``. A firmware without a status topic is seen back by
    its hello after ``since``; with neither, or with no restart to wait for, nothing on the wire
    can tell, and this returns at once. On expiry the error names why when the console said it
    (``WifiNotJoined``, ``BrokerNotReached``), else it is the wait's own ``WaitTimeout``.
    """
    config = board.config
    try:
        if config.has_status:
            topic = config.status_topic

            def online(received: list[Message]) -> bool:
                said = [m for m in received if m.topic == topic]
                return bool(said) and said[-1].payload == b"online" and said[-1].t >= since

            mqtt.wait_for(online, f"the board's last status on {topic!r} to be 'online' (connected)", timeout)
            return
        hello = config.contract.hello
        if hello is None or since == 0.0:
            return
        # A hello circulates for good (the tutorial's echo): only one seen after the board's last
        # reset is the new firmware's, whatever mark the caller took before it.
        mqtt.wait_count(config.echo_topic, hello, 1, timeout, since=max(since, reset_seen_at(board)))
    except WaitTimeout as e:
        # The host saw nothing: the console is all that can say why, and only what it said
        # since the board's last reset counts.
        lines = board.capture.lines(board.last_reset_index)
        events = [ev for ln in lines if ln.t >= since and (ev := parse_event(ln.text)) is not None]
        reason = why_offline(events, config, None)
        if reason is None:
            raise
        raise offline_error(reason, e.awaited, e.timeout, e.last_seen, e.log_path) from e
