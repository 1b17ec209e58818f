"""The board driver: one board's port, capture and REPL, above any transport."""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mpremote.transport import TransportError
from mpremote.transport_serial import SerialTransport

from rig.board.transport import BoardTransport
from rig.deadline import Deadline
from rig.errors import BoardUnreachable
from rig.firmware_config import FirmwareConfig
from rig.serialio.capture import SerialCapture
from rig.serialio.port import BoardPort
from rig.serialio.tap import Tap


class BoardState(enum.Enum):
    UNKNOWN = "unknown"  # not connected yet: nothing known about what runs
    CONNECTED = "connected"  # port open and captured
    DEPLOYED = "deployed"  # firmware files are on the board, not (re)started since they were written
    RUNNING = "running"  # main.py was started by a reset since the last deploy or interruption
    STOPPED = "stopped"  # a test interrupted, reset or power-cut it: restart before reuse
    BROKEN = "broken"  # unreachable; later tests on it are skipped, not retried forever


class Board:
    """Drives one board through its serial port, whatever the transport.

    Lifecycle: ``connect()`` starts the transport, opens the port and starts the capture;
    ``close()`` undoes both. In between, ``repl()`` lends mpremote the port for raw-REPL work,
    and ``soft_reset`` / ``interrupt`` / ``power_cycle`` change what runs. ``state`` follows
    unknown -> connected -> deployed -> running, and any action that disturbs the firmware
    leaves it ``stopped`` so that the next test restarts it.

    The board owns its state: its own actions change it, and the strategy that brings it to
    running (``rig.board.strategy``) reports a deploy (``record_deploy``) or a failure of the
    rig (``mark_broken``) through methods; nothing else assigns it.
    """

    def __init__(self, transport: BoardTransport, session_log: Path | None = None) -> None:
        self.transport = transport
        self.name = transport.name
        self.capture = SerialCapture(transport.name, session_log)
        self.port: BoardPort | None = None
        self._state = BoardState.UNKNOWN
        self._broken_reason: str | None = None
        # What the last deploy wrote as config.json; the strategy redeploys when a test needs other.
        self._deployed_config: FirmwareConfig | None = None

    @property
    def state(self) -> BoardState:
        return self._state

    @property
    def broken_reason(self) -> str | None:
        """Why the board was given up on, once it is ``broken``."""
        return self._broken_reason

    @property
    def deployed_config(self) -> FirmwareConfig | None:
        """The config.json of the last deploy, None before the first."""
        return self._deployed_config

    def connect(self) -> None:
        self.transport.start()
        self.port = BoardPort(self.transport.port_url, name=self.name)
        self.port.add_sink(self.capture)
        self.port.open()
        self._state = BoardState.CONNECTED

    def close(self) -> None:
        errors: list[BaseException] = []
        if self.port is not None:
            try:
                self.port.close()
            except BoardUnreachable as e:
                errors.append(e)
        self.capture.close()
        self.transport.stop()
        if errors:
            raise errors[0]

    @property
    def config(self) -> FirmwareConfig:
        """The config.json of the firmware now on the board."""
        if self.deployed_config is None:
            raise BoardUnreachable(f"{self.name}: no firmware has been deployed yet")
        return self.deployed_config

    def record_deploy(self, config: FirmwareConfig) -> None:
        """The firmware files and ``config`` were written. A board a reset restarted since (the
        deploy's own soft reset) stays running; otherwise the new files wait for one."""
        self._deployed_config = config
        if self._state is not BoardState.RUNNING:
            self._set(BoardState.DEPLOYED)

    def mark_broken(self, reason: str) -> None:
        """Give up on the board: the rig failed to reach it. Final: no action revives it."""
        self._state = BoardState.BROKEN
        self._broken_reason = reason

    def _set(self, state: BoardState) -> None:
        # A broken board stays broken whatever is tried on it afterwards.
        if self._state is not BoardState.BROKEN:
            self._state = state

    def _port(self) -> BoardPort:
        if self.port is None:
            raise BoardUnreachable(f"{self.name}: board is not connected")
        return self.port

    def write(self, data: bytes) -> None:
        self._port().write(data)

    @contextmanager
    def repl(self, max_block: float = 1.0, timeout: float = 10.0) -> Iterator[SerialTransport]:
        """mpremote's transport in raw REPL, over the rig's own port. Interrupts main.py.

        mpremote sends Ctrl-C first; a board that still gives no raw REPL (main.py hogging the
        console, a crash loop) is hard-reset once and asked again. If it is still unreachable,
        ``BoardUnreachable`` says so, and the plugin stops testing firmware on it.
        """
        self._set(BoardState.STOPPED)
        tap = Tap(self._port(), max_block=max_block)
        transport = _transport(tap)
        try:
            try:
                transport.enter_raw_repl(soft_reset=False, timeout_overall=timeout)
            except TransportError as first:
                transport.close()
                tap.close()
                self._recover(first)
                tap = Tap(self._port(), max_block=max_block)
                transport = _transport(tap)
                try:
                    transport.enter_raw_repl(soft_reset=False, timeout_overall=timeout)
                except TransportError as e:
                    raise BoardUnreachable(
                        f"{self.name}: no raw REPL even after a hard reset ({e}); "
                        f"last serial lines: {self.capture.tail(8)}"
                    ) from e
            try:
                yield transport
                transport.exit_raw_repl()
            except TransportError as e:
                raise BoardUnreachable(
                    f"{self.name}: raw REPL failed: {e}; last lines: {self.capture.tail(8)}"
                ) from e
        finally:
            transport.close()
            tap.close()

    def _recover(self, error: Exception) -> None:
        try:
            self.power_cycle()
        except BoardUnreachable as e:
            raise BoardUnreachable(
                f"{self.name}: no raw REPL after Ctrl-C ({error}) and no hard reset possible ({e}); "
                f"last serial lines: {self.capture.tail(8)}"
            ) from e

    def interrupt(self) -> None:
        """Ctrl-C, as a user types it: running code gets KeyboardInterrupt."""
        self.write(b"\x03")
        self._set(BoardState.STOPPED)

    def soft_reset(self, timeout: float = 10.0) -> None:
        """Restart the firmware so that boot.py and main.py run, as after a deploy.

        One Ctrl-C stops what runs; a second one would cut the firmware's own cleanup short, so
        wait for a REPL prompt first. Then Ctrl-B makes sure the friendly REPL (not the raw one)
        gets the Ctrl-D, because only a soft reset from the friendly REPL runs main.py.
        """
        deadline = Deadline(timeout)
        self._set(BoardState.STOPPED)  # until it is seen rebooting
        start = self.capture.next_index
        self.write(b"\r\x03")
        self.await_prompt(start, deadline)
        start = self.capture.next_index
        self.write(b"\x02\x04")
        # Until the board says it rebooted, what we send may reach the firmware that is ending.
        if (
            self.capture.wait(lambda ln: "soft reboot" in ln.text, start, deadline, include_partial=False)
            is None
        ):
            raise BoardUnreachable(
                f"{self.name}: no 'soft reboot' within {timeout:.0f}s of Ctrl-D; "
                f"last serial lines: {self.capture.tail(8, start)}"
            )
        self._set(BoardState.RUNNING)

    def await_prompt(self, start: int, deadline: Deadline) -> None:
        """Wait until the board shows a REPL prompt (friendly or raw) after capture line ``start``."""
        line = self.capture.wait(lambda ln: ln.text in (">>> ", ">"), start, deadline, include_partial=True)
        if line is None:
            raise BoardUnreachable(
                f"{self.name}: no REPL prompt within {deadline.timeout:.0f}s after Ctrl-C; "
                f"last serial lines: {self.capture.tail(8, start)}"
            )

    def power_cycle(self, timeout: float = 15.0) -> None:
        """Reset with no chance of cleanup (power cut, EN line). A board on native USB drops off
        the bus and comes back, perhaps under a new name: then reopen the port where it is."""
        port = self._port()
        deadline = Deadline(timeout)
        self.transport.hard_reset(port)
        self._set(BoardState.RUNNING)
        if self.transport.reenumerates:
            # Search only once the old device is gone, or we would find it again on its way out.
            if not port.wait_lost(deadline.remaining_or(timeout)):
                raise BoardUnreachable(f"{self.name}: its port {port.url} did not go away on reset")
            self._reopen(deadline.remaining_or(timeout))

    def _reopen(self, timeout: float) -> None:
        old = self._port()
        old.remove_sink(self.capture)
        # The device is gone; closing what is left of it may fail, and that is expected.
        with contextlib.suppress(BoardUnreachable):
            old.close()
        url = self.transport.rediscover(timeout)
        self.port = BoardPort(url, name=self.name, baudrate=old.baudrate)
        self.port.add_sink(self.capture)
        self.port.open()
        self.capture.port_reopened(url)


def _transport(tap: Tap) -> SerialTransport:
    transport = SerialTransport(tap.url)
    # mpremote blocks in read() only on a pty and otherwise polls with 10 ms sleeps, a third of
    # a deploy's time. The tap blocks like a pty, but never longer than its max_block, so
    # mpremote's own timeouts overshoot by at most that.
    transport.is_pty = True
    return transport
