"""A TCP relay: connections accepted on one address are carried, byte for byte, to another.

The rig uses it on the host end of a virtual board's link (``rig.netns``): a broker that listens
on this machine's loopback only (a plain ``mosquitto -c`` with ``listener 1883 127.0.0.1``, the
way a user tries an external broker) cannot be reached from the board's namespace, whose
``127.0.0.1`` is its own. The relay listens on the host's address on that link, with the broker's
port, and opens a connection to the broker for each one the board makes: what a home router's
port forward does for a board on Wi-Fi.

Why a relay of our own, and not the kernel: with no iptables or nft on the rig's machines there
is no DNAT, and ``route_localnet`` alone only lets a packet addressed to 127.0.0.1 cross an
interface: the board would have to address 127.0.0.1, routed out through its link with its own
loopback down, and the host accept martian replies on the veth. Why not ``socat``: one more system
package on every bench for some forty lines of asyncio, and a process of its own to stop by PID,
where a thread of this process ends with it, however it ends.

Lifecycle: ``start()`` binds the listening socket (raising ``RelayError`` when it cannot, e.g. the
address is taken) and serves from a daemon thread of its own; ``stop()`` closes the listener and
every relayed connection, and waits (bounded) for the thread. A connection whose far side cannot
be opened is closed at once: the board sees its broker refuse, as it would without the relay.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading

from rig.errors import InfrastructureError

# Far side's connect: a broker on this machine answers at once; a bound keeps a dead one from
# holding a board's connection open.
_CONNECT_S = 5.0
_CHUNK = 64 * 1024


class RelayError(InfrastructureError):
    """The relay could not listen where it was asked to, or would not stop."""


class TcpRelay:
    """Relays TCP connections from ``listen`` (host, port) to ``target`` (host, port)."""

    def __init__(self, listen: tuple[str, int], target: tuple[str, int], name: str = "tcp relay") -> None:
        self.listen = listen
        self.target = target
        self.name = name
        self.connections = 0  # accepted so far: what a test can check the relay carried
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        (lh, lp), (th, tp) = self.listen, self.target
        return f"<TcpRelay {self.name} {lh}:{lp} -> {th}:{tp}>"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, timeout: float = 5.0) -> None:
        if self.running:
            return
        loop = asyncio.new_event_loop()
        bound: concurrent.futures.Future[None] = concurrent.futures.Future()
        thread = threading.Thread(target=self._run, args=(loop, bound), name=self.name, daemon=True)
        thread.start()
        try:
            bound.result(timeout)
        except concurrent.futures.TimeoutError as e:
            raise RelayError(f"{self!r}: did not start listening within {timeout:g}s") from e
        except OSError as e:
            thread.join(timeout)
            host, port = self.listen
            raise RelayError(f"{self!r}: cannot listen on {host}:{port}: {e}") from e
        self._loop, self._thread = loop, thread

    def stop(self, timeout: float = 5.0) -> None:
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is None or thread is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop ended already
            loop.call_soon_threadsafe(self._shut)
        thread.join(timeout)
        if thread.is_alive():
            raise RelayError(f"{self!r}: its thread did not end within {timeout:g}s")

    # -- the loop's thread -----------------------------------------------------------------------

    def _run(self, loop: asyncio.AbstractEventLoop, bound: concurrent.futures.Future[None]) -> None:
        asyncio.set_event_loop(loop)
        try:
            host, port = self.listen
            self._server = loop.run_until_complete(
                asyncio.start_server(self._serve, host, port, reuse_address=True)
            )
        except OSError as e:
            bound.set_exception(e)
            loop.close()
            return
        bound.set_result(None)
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def _shut(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in self._tasks:
            task.cancel()
        loop = asyncio.get_running_loop()
        # Let the cancelled connections close their sockets, then end the loop.
        gathered = asyncio.gather(*self._tasks, return_exceptions=True)
        gathered.add_done_callback(lambda _: loop.stop())

    async def _serve(self, near_reader: asyncio.StreamReader, near_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        far_writer: asyncio.StreamWriter | None = None
        try:
            far_reader, far = await asyncio.wait_for(asyncio.open_connection(*self.target), _CONNECT_S)
            far_writer = far
            # Either side ending ends both: MQTT has no use for a half-open connection.
            pipes = [
                asyncio.ensure_future(_pipe(near_reader, far)),
                asyncio.ensure_future(_pipe(far_reader, near_writer)),
            ]
            try:
                await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for pipe in pipes:
                    pipe.cancel()
                await asyncio.gather(*pipes, return_exceptions=True)
        except (OSError, asyncio.TimeoutError):
            pass  # the far side refused or did not answer: closing tells the near side so
        finally:
            for writer in (near_writer, far_writer):
                if writer is not None:
                    writer.close()
            self._tasks.discard(task)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()
