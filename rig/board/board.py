"""The board driver: one board's port, capture and REPL, above any transport."""

from __future__ import annotations

import contextlib
import enum
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import serial
from mpremote.transport import TransportError
from mpremote.transport_serial import SerialTransport

from rig.board.transport import BoardTransport
from rig.deadline import Deadline
from rig.errors import BoardUnreachable
from rig.firmware_config import FirmwareConfig
from rig.serialio.capture import Line, SerialCapture
from rig.serialio.port import BoardPort
from rig.serialio.tap import Tap, TapExpired, TapOverflow

# A board that answers Ctrl-C prints its prompt at once; one left in the raw REPL prints nothing.
# Silence this long means it has stopped talking (a firmware's cleanup may pause; not this long).
SETTLE_QUIET = 1.0
# How long one read by mpremote through the tap may block. mpremote waits for the board's
# raw-paste flow control with pyserial's blocking read and takes an empty read for a protocol
# error; at 1 s, a board (or a capture thread) slowed by a loaded host failed a deploy with
# "unexpected read during raw paste: b''" (1 run in 20 on 2 cores at 4 times CI's load). The
# whole conversation stays bounded by the repl's work bound, and reaching the raw REPL by its
# timeout, whatever this is: a read wakes at those deadlines. mpremote's own per-character
# timeouts (in read_until) may overshoot by this much, on a board that has already gone silent.
REPL_READ_BLOCK_S = 10.0
# How much of one console line an error shows.
SHOWN_CHARS = 160
# A console flood, sustained over a wait: more than ten times what a 115200-baud UART carries
# (11.5 kB/s), far more than anyone reads. A native-USB board can send faster; doing so, it floods too.
# (The virtual board floods at 1-10 MB/s, as fast as the host reads it.)
FLOOD_BYTES_PER_SECOND = 100_000


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
    running (``rig.strategy``) reports a deploy (``record_deploy``) or a failure of the
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
        # Bound (s) of each wait on the board whose caller gives none: soft_reset, each rung of
        # repl. The strategy sets it to the run's --rig-timeout.
        self.timeout = 10.0
        # Hard resets and power cycles so far, the escalation's included.
        self.hard_resets = 0
        # The capture index at which the rig last reset the board (soft or hard): what boots
        # after it is the firmware that reset started, whatever booted before it.
        self.last_reset_index = 0
        # When (wall clock, as the broker tap stamps what it reads) and how the rig last reset the
        # board: where boot-to-connected starts (``rig.evidence.boot_time``). None before the first.
        self.last_reset_at: float | None = None
        self.last_reset_how = ""
        # Files on the board's filesystem that stand in for hardware the board lacks (the
        # virtual board's network module for a Wi-Fi test): part of the board, not of the
        # firmware, so a release deploy, which removes modules its bundle lacks, leaves them.
        self.hardware_stand_ins: set[str] = set()

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
    def repl(
        self, timeout: float | None = None, *, work: float = 60.0, max_block: float = REPL_READ_BLOCK_S
    ) -> Iterator[SerialTransport]:
        """mpremote's transport in raw REPL, over the rig's own port. Interrupts main.py.

        Reaching the raw REPL climbs one ladder, each rung bounded by ``timeout`` (default
        ``self.timeout``) whatever the board sends: Ctrl-C, then a hard reset (power cycle) and
        Ctrl-C again. A board still unreachable raises ``BoardUnresponsive``, and the strategy
        marks it broken. The work done inside is bounded by ``work`` seconds overall: past it,
        every read through mpremote raises ``TapExpired``.
        """
        self._set(BoardState.STOPPED)
        bound = self.timeout if timeout is None else timeout
        transport, tap = self._reach_raw_repl(bound, max_block)
        try:
            tap.expire_at(Deadline(work), f"the work in the raw REPL (bound {work:.0f}s)")
            try:
                yield transport
                transport.exit_raw_repl()
            except TransportError as e:
                raise BoardUnreachable(
                    f"{self.name}: raw REPL failed: {e}; last lines: {self.last_seen(8)}"
                ) from e
            except (TapExpired, TapOverflow) as e:
                raise BoardUnresponsive(
                    self.name,
                    f"the work in the raw REPL did not end: {e}",
                    [],
                    self.last_seen(8),
                    self.capture.session_log,
                ) from e
        finally:
            transport.close()
            tap.close()

    def _reach_raw_repl(self, bound: float, max_block: float) -> tuple[SerialTransport, Tap]:
        """The escalation, in this one place: Ctrl-C, then a hard reset and Ctrl-C, then give up."""
        start = self.capture.next_index
        tried: list[str] = []
        reached = self._attempt_raw_repl(Deadline(bound), max_block, after_reset=False, tried=tried)
        if reached is not None:
            return reached
        try:
            self.power_cycle()
        except BoardUnreachable as e:
            raise BoardUnresponsive(
                self.name,
                f"no raw REPL after Ctrl-C and no hard reset possible ({e})",
                tried,
                self.last_seen(8, start),
                self.capture.session_log,
            ) from e
        tried.append("hard reset: done")
        reached = self._attempt_raw_repl(Deadline(bound), max_block, after_reset=True, tried=tried)
        if reached is not None:
            return reached
        raise BoardUnresponsive(
            self.name,
            "no raw REPL even after a hard reset",
            tried,
            self.last_seen(8, start),
            self.capture.session_log,
        )

    def _attempt_raw_repl(
        self, deadline: Deadline, max_block: float, *, after_reset: bool, tried: list[str]
    ) -> tuple[SerialTransport, Tap] | None:
        """One rung: Ctrl-C, wait for the board to settle, then mpremote's raw REPL, all before
        ``deadline``. None, with what happened appended to ``tried``, if it failed."""
        port = self._port()
        start, received, began = self.capture.next_index, port.bytes_read, time.monotonic()

        def failed(what: str) -> None:
            volume = describe_volume(port.bytes_read - received, time.monotonic() - began)
            tried.append(f"Ctrl-C: {what} within {deadline.timeout or 0:g}s; the board sent {volume}")

        self.write(b"\r\x03")
        if not self._settle(start, deadline, repeat=after_reset):
            failed("no REPL prompt, and the console never went quiet")
            return None
        # Made only now, so that mpremote, which reads a byte at a time, never wades through what
        # the board printed before it stopped.
        tap = Tap(port, max_block=max_block, deadline=deadline, awaited="the raw REPL")
        transport = _transport(tap)
        try:
            transport.enter_raw_repl(soft_reset=False, timeout_overall=deadline.remaining() or 0.0)
        except (TransportError, TapExpired, TapOverflow) as e:
            transport.close()
            tap.close()
            failed(f"no raw REPL ({e})")
            return None
        except serial.SerialException as e:
            transport.close()
            tap.close()
            raise BoardUnreachable(f"{self.name}: port lost while entering the raw REPL: {e}") from e
        return transport, tap

    def _settle(self, start: int, deadline: Deadline, repeat: bool) -> bool:
        """After a Ctrl-C: True once the board shows a REPL prompt, or stays quiet for
        ``SETTLE_QUIET`` (a board left in the raw REPL answers Ctrl-C with nothing); False if
        neither happens before ``deadline`` (a flood, or code that ignores Ctrl-C and talks).
        ``repeat`` sends Ctrl-C again after each period that was not quiet: after a reset the
        first may have reached a chip still booting, and there is no cleanup left to cut short."""
        port = self._port()
        while True:
            window = Deadline(deadline.remaining_or(SETTLE_QUIET))
            received, scanned = port.bytes_read, self.capture.next_index
            if self.capture.wait(_at_prompt, start, window, include_partial=True) is not None:
                return True
            if port.bytes_read == received and window.timeout == SETTLE_QUIET:
                return True
            if deadline.expired:
                return False
            start = scanned  # the lines before were scanned already; in a flood that is many
            if repeat:
                self.write(b"\r\x03")

    def last_seen(self, n: int, start: int = 0) -> list[str]:
        """The last ``n`` lines since capture line ``start``, each cut to ``SHOWN_CHARS``: a tail
        for an error message, never megabytes of a flood."""
        return [clip(text) for text in self.capture.tail(n, start)]

    def interrupt(self) -> None:
        """Ctrl-C, as a user types it: running code gets KeyboardInterrupt."""
        self.write(b"\x03")
        self._set(BoardState.STOPPED)

    def soft_reset(self, timeout: float | None = None) -> None:
        """Restart the firmware so that boot.py and main.py run, as after a deploy.

        One Ctrl-C stops what runs; a second one would cut the firmware's own cleanup short, so
        wait for a REPL prompt first. Then Ctrl-B makes sure the friendly REPL (not the raw one)
        gets the Ctrl-D, because only a soft reset from the friendly REPL runs main.py. The whole
        is bounded by ``timeout`` (default ``self.timeout``), however much the board prints.
        """
        deadline = Deadline(self.timeout if timeout is None else timeout)
        self._set(BoardState.STOPPED)  # until it is seen rebooting
        start = self.capture.next_index
        self.write(b"\r\x03")
        self.await_prompt(start, deadline)
        start = self.last_reset_index = self.capture.next_index
        received, began = self._port().bytes_read, time.monotonic()
        self.last_reset_at, self.last_reset_how = time.time(), "soft reset"
        self.write(b"\x02\x04")
        # Until the board says it rebooted, what we send may reach the firmware that is ending.
        if (
            self.capture.wait(lambda ln: "soft reboot" in ln.text, start, deadline, include_partial=False)
            is None
        ):
            volume = describe_volume(self._port().bytes_read - received, time.monotonic() - began)
            raise BoardUnresponsive(
                self.name,
                f"no 'soft reboot' within {deadline.timeout or 0:g}s of Ctrl-D",
                [f"Ctrl-D: the board sent {volume}"],
                self.last_seen(8, start),
                self.capture.session_log,
            )
        self._set(BoardState.RUNNING)

    def await_prompt(self, start: int, deadline: Deadline) -> None:
        """Wait until the board shows a REPL prompt (friendly or raw) after capture line ``start``."""
        received, began = self._port().bytes_read, time.monotonic()
        if self.capture.wait(_at_prompt, start, deadline, include_partial=True) is None:
            volume = describe_volume(self._port().bytes_read - received, time.monotonic() - began)
            raise BoardUnresponsive(
                self.name,
                f"no REPL prompt within {deadline.timeout or 0:g}s after Ctrl-C",
                [f"Ctrl-C: the board sent {volume}"],
                self.last_seen(8, start),
                self.capture.session_log,
            )

    def power_cycle(self, timeout: float = 15.0) -> None:
        """Reset with no chance of cleanup (power cut, EN line). A board on native USB drops off
        the bus and comes back, perhaps under a new name: then reopen the port where it is."""
        port = self._port()
        deadline = Deadline(timeout)
        self.last_reset_index = self.capture.next_index
        self.last_reset_at, self.last_reset_how = time.time(), "power cycle"
        self.transport.hard_reset(port)
        self.hard_resets += 1
        self._set(BoardState.RUNNING)
        if self.transport.reenumerates:
            # Search only once the old device is gone, or we would find it again on its way out.
            if not port.wait_lost(deadline.remaining_or(timeout)):
                raise BoardUnreachable(f"{self.name}: its port {port.url} did not go away on reset")
            self.reattach(deadline.remaining_or(timeout))

    def reattach(self, timeout: float) -> None:
        """Find the board's port again (it re-enumerated, perhaps under a new name) and go on
        capturing from it, in the same capture."""
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


class BoardUnresponsive(BoardUnreachable):
    """The rig's deadline for reaching the board passed, whatever the board sent.

    ``what`` says what did not happen, ``tried`` the steps of the escalation and what each saw
    (how much the board sent: a flood is named), ``last_seen`` a bounded tail of the console,
    ``log_path`` the session log that has all of it.
    """

    def __init__(
        self, board: str, what: str, tried: list[str], last_seen: list[str], log_path: Path | None
    ) -> None:
        self.board = board
        self.what = what
        self.tried = tried
        self.last_seen = last_seen
        self.log_path = log_path
        steps = "".join(f"\n  {step}" for step in tried)
        tail = "\n".join(f"    {line}" for line in last_seen) or "    (nothing)"
        where = f"\n  full log: {log_path}" if log_path is not None else ""
        super().__init__(f"{board}: {what}{steps}\n  last {len(last_seen)} lines seen:\n{tail}{where}")

    @property
    def summary(self) -> str:
        """One line: what did not happen and where the log is, for the tests skipped after it."""
        where = f"; full log: {self.log_path}" if self.log_path is not None else ""
        return f"{self.board}: {self.what}{where}"


def _at_prompt(line: Line) -> bool:
    return line.text in (">>> ", ">")


def clip(text: str) -> str:
    """``text`` cut to ``SHOWN_CHARS``, saying how much was left out."""
    if len(text) <= SHOWN_CHARS:
        return text
    return f"{text[:SHOWN_CHARS]}... ({len(text) - SHOWN_CHARS} more characters)"


def describe_volume(count: int, seconds: float) -> str:
    """``312 bytes in 4.0s``, or ``12.3 MB in 2.0s (6.15 MB/s: it floods its console, ...)``."""
    rate = count / seconds if seconds > 0 else 0.0
    if rate <= FLOOD_BYTES_PER_SECOND:
        return f"{count} bytes in {seconds:.1f}s"
    return (
        f"{count / 1e6:.1f} MB in {seconds:.1f}s ({rate / 1e6:.2f} MB/s: it floods its console, "
        "over ten times what a 115200-baud UART carries)"
    )


def _transport(tap: Tap) -> SerialTransport:
    transport = SerialTransport(tap.url)
    # mpremote blocks in read() only on a pty and otherwise polls with 10 ms sleeps, a third of
    # a deploy's time. The tap blocks like a pty, but never longer than its max_block, so
    # mpremote's own timeouts overshoot by at most that.
    transport.is_pty = True
    return transport
