"""The bench page's web server: the page itself, the bench's events as server-sent events, and
the inject box and buttons as small JSON posts; in replay mode, a finished run's tests.

The server relays the events; the page does not speak MQTT itself. That is one moving part
fewer (no MQTT library in the browser, so no npm and no build step), the page shows exactly what
the rig's own observer saw (console lines and status included, on one clock), and it works with
the run's locked-down broker without ever holding its credentials: only the rig's clients log
in, and what the page may do is what ``BenchActions`` allows.

Routes::

    GET  /                          the page (static/index.html)
    GET  /static/NAME               its script and style sheet (package data)
    GET  /api/info                  the board, its topics, the broker's URLs, the mode, and
                                    which actions are unavailable and why
    GET  /api/events                text/event-stream: one ``data: {json}`` per hub event,
                                    history first, ``: keep-alive`` every ~15 s, and an ``end``
                                    event when the bench stops
    POST /api/inject                {"topic", "payload", "qos", "retain"} -> actions.inject
    POST /api/action/NAME           soft_reset | interrupt | power_cut -> actions.run
    GET  /api/runs                  replay: the tests of the finished run
    GET  /api/runs/TEST/events      replay: that test's timeline as hub-shaped events

Every request must name this server in ``Host`` (421 if not), come from its origin when it says
where it comes from (403), and carry the run's token (401 without, 403 with a wrong one): see
``rig.bench_page.access``. ``GET /?token=TOKEN``, the URL the command prints (``page_url``), sets
the token's cookie and redirects to ``/``. At most ``max_streams`` event streams are open at once
(503 beyond); a stream that falls too far behind is ended with an ``behind`` event.

Answers to the posts: 200 ``{"ok": true, "detail"}``; 400 bad input (the message names the
field), 403 the action is unavailable here, 404 an unknown action, 502 the rig failed doing it:
``{"ok": false, "error"}``. An action that was tried (200, 403, 502) is also published to the
hub as an ``action`` event, so every open page sees it; bad input is only answered.

Posts must be JSON: a cross-site form cannot send that without a preflight, never granted.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import importlib.resources
import json
import logging
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from rig.bench_page.access import TOKEN_PARAM, PageAccess, new_token
from rig.bench_page.actions import ACTIONS, ActionUnavailable, BenchActions
from rig.bench_page.hub import Event, EventHub, Subscription
from rig.bench_page.replay import ReplaySource
from rig.deadline import Deadline
from rig.errors import InfrastructureError, RigError
from rig.evidence.run_folder import RunFolderError, UnknownTest

log = logging.getLogger(__name__)

# A comment line every so often keeps proxies and the browser from timing an idle stream out.
KEEPALIVE = 15.0
# How long one wait on a page's subscription lasts before the stream looks at its socket again.
_POLL = 0.5
# Larger than any payload the firmware takes (its max_payload), smaller than a mistake.
MAX_PAYLOAD = 16 * 1024
# How long a stopping server lets open requests finish before aborting them.
_SHUTDOWN = 0.5
# Event streams open at once, each holding one thread while it waits for the hub: a few browser
# tabs and scripts, not a crowd that could slow the rig.
MAX_STREAMS = 8
# How long a write to a page may wait for the page to read before its stream is dropped: a
# stalled reader must not keep one of the MAX_STREAMS for ever.
WRITE_TIMEOUT = 30.0
# Actions run one after another on the bench anyway; a few threads let an inject pass a reset.
_ACTION_THREADS = 4

_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
# Nothing from elsewhere, no inline script: untrusted text from a board can never run as code.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


class PageServerError(InfrastructureError):
    """The page's server could not start listening, or would not stop."""


class BadInput(ValueError):
    """A post the page should not have sent; ``field`` names what was wrong."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        super().__init__(f"{field}: {problem}")


def parse_inject(body: object) -> tuple[str, bytes, int, bool]:
    """(topic, payload, qos, retain) from an inject post, or ``BadInput`` naming the field."""
    if not isinstance(body, dict):
        raise BadInput("body", "expected a JSON object with topic, payload, qos and retain")
    topic = body.get("topic")
    if not isinstance(topic, str) or not topic:
        raise BadInput("topic", "an MQTT topic is required (text, not empty)")
    if "+" in topic or "#" in topic:
        raise BadInput("topic", f"{topic!r}: a message is published on a topic, not on a filter (+, #)")
    payload = body.get("payload", "")
    if not isinstance(payload, str):
        raise BadInput("payload", "expected text")
    data = payload.encode("utf-8")
    if len(data) > MAX_PAYLOAD:
        raise BadInput("payload", f"{len(data)} bytes is too long (at most {MAX_PAYLOAD})")
    qos = body.get("qos", 0)
    if isinstance(qos, bool) or qos not in (0, 1, 2):
        raise BadInput("qos", f"{qos!r}: expected 0, 1 or 2")
    retain = body.get("retain", False)
    if not isinstance(retain, bool):
        raise BadInput("retain", f"{retain!r}: expected true or false")
    return topic, data, int(qos), retain


def without_passwords(value: Any) -> Any:
    """``value`` with the password of every URL in it replaced by ``***``: the page shows the
    broker's URLs and must never show the run's credentials, whoever built ``info``."""
    if isinstance(value, dict):
        return {k: without_passwords(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [without_passwords(v) for v in value]
    if isinstance(value, str) and "://" in value and "@" in value:
        parts = urllib.parse.urlsplit(value)
        if parts.password is not None:
            host = parts.netloc.rsplit("@", 1)[1]
            return urllib.parse.urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))
    return value


def _static_files() -> dict[str, bytes]:
    folder = importlib.resources.files("rig.bench_page") / "static"
    return {entry.name: entry.read_bytes() for entry in folder.iterdir() if entry.is_file()}


def _payload_label(data: bytes) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return f"hex {data.hex()}"
    return repr(text) if text.isprintable() else f"hex {data.hex()}"


class BenchServer:
    """The page's web server, run on a thread of its own with its own event loop.

    Lifecycle: made with the hub to relay, the actions to offer and the ``info`` to show;
    ``start(timeout)`` returns once it listens (``url`` then says where) or raises
    ``PageServerError``; ``stop(timeout)`` ends every open event stream, stops listening, joins
    the thread and waits for an action still being done (a power cut takes seconds: the caller
    must not close the board under it), raising ``PageServerError`` if any of that takes longer
    than ``timeout``; it is idempotent. The hub and the actions stay the caller's: neither is
    closed here.
    """

    def __init__(
        self,
        hub: EventHub,
        actions: BenchActions,
        info: dict[str, Any],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        replay: ReplaySource | None = None,
        max_streams: int = MAX_STREAMS,
        token: str | None = None,
    ) -> None:
        if max_streams < 1:
            raise ValueError(f"max_streams: {max_streams}: at least one event stream must be allowed")
        self.hub = hub
        self.actions = actions
        self.info = info
        self.host = host
        self.port = port
        self.replay = replay
        self.keepalive_interval = KEEPALIVE
        self.write_timeout = WRITE_TIMEOUT
        self.max_streams = max_streams
        # The run's secret: printed in page_url, never logged (the server keeps no access log).
        self.token = token if token is not None else new_token()
        self._access: PageAccess | None = None
        self._url: str | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._subscriptions: set[Subscription] = set()
        self._closing = False
        # The actions being done now, by name; stop() waits for them.
        self._in_flight: list[str] = []
        self._idle = threading.Condition()
        self._static = _static_files()
        self._streams = concurrent.futures.ThreadPoolExecutor(max_streams, "bench-page-stream")
        self._workers = concurrent.futures.ThreadPoolExecutor(_ACTION_THREADS, "bench-page-action")

    @property
    def url(self) -> str:
        if self._url is None:
            raise PageServerError("the bench page is not listening: start() it first")
        return self._url

    @property
    def page_url(self) -> str:
        """The URL to open: ``url`` with the token. For the terminal only, never for a file."""
        return f"{self.url}?{TOKEN_PARAM}={self.token}"

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> None:
        if self._thread is not None:
            raise PageServerError("the bench page's server was started already")
        self._thread = threading.Thread(target=self._serve, name="bench-page", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            self._stop_thread(timeout)
            raise PageServerError(
                f"the bench page did not listen on {self.host}:{self.port} within {timeout:g}s"
            )
        if self._failure is not None:
            self._thread.join(timeout)
            self._shutdown_pools()
            raise PageServerError(
                f"the bench page could not listen on {self.host}:{self.port}: {self._failure}"
            ) from self._failure

    def stop(self, timeout: float = 10.0) -> None:
        deadline = Deadline(timeout)
        if self._thread is not None and self._thread.is_alive():
            self._stop_thread(deadline.remaining_or(timeout))
            if self._thread.is_alive():
                raise PageServerError(f"the bench page's server thread did not stop within {timeout:g}s")
        with self._idle:
            if not self._idle.wait_for(lambda: not self._in_flight, deadline.remaining()):
                raise PageServerError(
                    f"the bench page stopped, but {', '.join(self._in_flight)} was still being done "
                    f"after {timeout:g}s"
                )
        self._shutdown_pools()

    def __enter__(self) -> BenchServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _stop_thread(self, timeout: float) -> None:
        assert self._thread is not None
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(loop.stop)
        self._thread.join(timeout)

    def _shutdown_pools(self) -> None:
        # Idle by now (the streams ended, no action in flight): their threads end at once.
        self._streams.shutdown(wait=True, cancel_futures=True)
        self._workers.shutdown(wait=True, cancel_futures=True)

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        runner = web.AppRunner(self._app(), shutdown_timeout=_SHUTDOWN, access_log=None)
        try:
            try:
                loop.run_until_complete(self._listen(runner))
            except (OSError, RuntimeError) as e:
                self._failure = e
                loop.run_until_complete(runner.cleanup())
                return
            finally:
                self._ready.set()
            loop.run_forever()
            self._closing = True
            self._end_streams()
            loop.run_until_complete(runner.cleanup())
            # The streams' waits are bounded by _POLL and their subscriptions closed: quick. An
            # action may take seconds more: stop() waits for it, with its own bound.
            self._streams.shutdown(wait=True, cancel_futures=True)
            self._workers.shutdown(wait=False, cancel_futures=True)
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _listen(self, runner: web.AppRunner) -> None:
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        host, port = runner.addresses[0][:2]
        self._access = PageAccess([str(a[0]) for a in runner.addresses], int(port), self.host, self.token)
        shown = f"[{host}]" if ":" in host else host
        self._url = f"http://{shown}:{port}/"

    def _end_streams(self) -> None:
        for subscription in list(self._subscriptions):
            subscription.close()

    def _app(self) -> web.Application:
        app = web.Application(middlewares=[_security_headers, self._guard])
        app.router.add_get("/", self._index)
        app.router.add_get("/static/{name}", self._asset)
        app.router.add_get("/api/info", self._info)
        app.router.add_get("/api/events", self._events)
        app.router.add_post("/api/inject", self._inject)
        app.router.add_post("/api/action/{name}", self._action)
        app.router.add_get("/api/runs", self._runs)
        app.router.add_get("/api/runs/{test:.+}/events", self._run_events)
        return app

    # -- who may ask (rig.bench_page.access decides) ------------------------------------------

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        access = self._access
        if access is None:  # not listening yet: nobody can be asking
            return _answer(503, error="the bench page is starting")
        host = request.headers.get("Host")
        if not access.host_allowed(host):
            return _answer(
                421,
                error=f"this server is the bench page at {self.url}; it does not answer for Host "
                f"{host!r} (a page elsewhere whose name points here is refused: DNS rebinding)",
            )
        origin = request.headers.get("Origin")
        if origin is not None and not access.origin_allowed(origin):
            return _answer(403, error=f"cross-origin request from {origin} refused")
        how = "open the page's URL with its token, as rig up or rig page printed it (…/?token=…)"
        query_token = request.query.get(TOKEN_PARAM)
        if request.path == "/" and request.method == "GET" and query_token is not None:
            if not access.token_ok(query_token):
                return _answer(403, error=f"wrong token: {how}")
            # The token leaves the address bar (and the history) at once: it is kept as a cookie.
            response = web.Response(status=303, headers={"Location": "/"})
            response.set_cookie(access.cookie, access.token, httponly=True, samesite="Strict", path="/")
            return response
        given = access.bearer(request.headers.get("Authorization"))
        if given is None:
            given = request.cookies.get(access.cookie)
        if given is None:
            return _answer(401, error=f"the bench page needs this run's token: {how}")
        if not access.token_ok(given):
            return _answer(403, error=f"wrong token (from another run?): {how}")
        return await handler(request)

    # -- the page -----------------------------------------------------------------------------

    async def _index(self, request: web.Request) -> web.Response:
        return self._file("index.html")

    async def _asset(self, request: web.Request) -> web.Response:
        return self._file(request.match_info["name"])

    def _file(self, name: str) -> web.Response:
        body = self._static.get(name)
        suffix = "." + name.rsplit(".", 1)[-1]
        if body is None or suffix not in _CONTENT_TYPES:
            raise web.HTTPNotFound(text=f"no such file: {name}")
        return web.Response(
            body=body, headers={"Content-Type": _CONTENT_TYPES[suffix], "Cache-Control": "no-store"}
        )

    async def _info(self, request: web.Request) -> web.Response:
        info = dict(self.info)
        info.setdefault("mode", "replay" if self.replay is not None else "live")
        info["unavailable"] = {**info.get("unavailable", {}), **self.actions.unavailable()}
        info["actions"] = ACTIONS
        # The rig's clock: the page's plot measures "the last minute" on it, not the browser's.
        info["now"] = time.time()
        return web.json_response(without_passwords(info))

    # -- events -------------------------------------------------------------------------------

    async def _events(self, request: web.Request) -> web.StreamResponse:
        if len(self._subscriptions) >= self.max_streams:
            return _answer(
                503,
                error=f"{len(self._subscriptions)} event streams are open, the most this page serves "
                f"(max_streams {self.max_streams}; rig up and rig page: --page-streams): close a tab",
            )
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        # Counted before the first await: no other stream can slip in between check and count.
        subscription = self.hub.subscribe()
        self._subscriptions.add(subscription)
        if self._closing:
            subscription.close()
        loop = asyncio.get_running_loop()

        async def write(data: bytes) -> None:
            await asyncio.wait_for(response.write(data), self.write_timeout)

        try:
            await response.prepare(request)
            # A page that lost its stream asks again after this many milliseconds.
            await write(b"retry: 2000\n\n")
            quiet_since = loop.time()
            while request.transport is not None and not request.transport.is_closing():
                # Subscription.take blocks: it waits on a thread of its own, never on the loop.
                events = await loop.run_in_executor(self._streams, subscription.take, _POLL)
                if subscription.lost:
                    # The page fell behind and missed events: it cannot show a true picture. End
                    # its stream with a note; it reconnects and starts again from the history.
                    note = {"lost": subscription.lost, "detail": _behind(subscription.lost)}
                    await write(f"event: behind\ndata: {_dumps(note)}\n\n".encode())
                    break
                if events:
                    await write(_sse(events))
                    quiet_since = loop.time()
                elif subscription.closed:
                    await write(b"event: end\ndata: {}\n\n")
                    break
                elif loop.time() - quiet_since >= self.keepalive_interval:
                    await write(b": keep-alive\n\n")
                    quiet_since = loop.time()
        except TimeoutError:
            # The page stopped reading: drop it, so that it neither holds a stream nor a write.
            log.warning("bench page: an event stream read nothing for %gs: dropped", self.write_timeout)
            if request.transport is not None:
                request.transport.abort()
        except (ConnectionError, RuntimeError):
            pass  # the page went away (a closed tab, a reload): nothing to tell it
        finally:
            self._subscriptions.discard(subscription)
            self.hub.unsubscribe(subscription)
        return response

    # -- inject and actions -------------------------------------------------------------------

    async def _inject(self, request: web.Request) -> web.Response:
        try:
            topic, data, qos, retain = parse_inject(await _json_body(request))
        except BadInput as e:
            return _answer(400, error=str(e), field=e.field)
        flags = f"q{qos}{', retained' if retain else ''}"
        detail = f"published {_payload_label(data)} on {topic} ({flags})"

        def inject() -> str:
            self.actions.inject(topic, data, qos, retain)
            return detail

        return await self._attempt("inject", inject, topic=topic, hex=data.hex(), qos=qos, retain=retain)

    async def _action(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        try:
            await _json_body(request)
        except BadInput as e:
            return _answer(400, error=str(e), field=e.field)
        if name not in ACTIONS:
            return _answer(404, error=f"no such action {name!r} (known: {', '.join(ACTIONS)})")
        return await self._attempt(name, lambda: self.actions.run(name))

    async def _attempt(self, name: str, call: Callable[[], str], **fields: Any) -> web.Response:
        """Does ``call`` on a worker thread (actions block: a power cut takes seconds), answers
        the page and tells every page through the hub."""
        loop = asyncio.get_running_loop()
        status, ok = 200, True
        try:
            detail = await loop.run_in_executor(self._workers, self._tracked, name, call)
        except ActionUnavailable as e:
            status, ok, detail = 403, False, f"unavailable: {e}"
        except RigError as e:
            status, ok, detail = 502, False, f"{type(e).__name__}: {e}"
        except Exception as e:  # a bug in the actions: shown to the page and logged, not hidden
            log.exception("bench page: %s failed", name)
            status, ok, detail = 500, False, f"{type(e).__name__}: {e}"
        self.hub.publish("action", name=name, ok=ok, detail=detail, **fields)
        return _answer(status, detail=detail) if ok else _answer(status, error=detail)

    def _tracked(self, name: str, call: Callable[[], str]) -> str:
        with self._idle:
            self._in_flight.append(name)
        try:
            return call()
        finally:
            with self._idle:
                self._in_flight.remove(name)
                self._idle.notify_all()

    # -- replay -------------------------------------------------------------------------------

    async def _runs(self, request: web.Request) -> web.Response:
        replay = self._replay_or_404()
        loop = asyncio.get_running_loop()
        tests = await loop.run_in_executor(self._workers, replay.tests)
        return web.json_response(
            {"artifacts": str(replay.folder), "tests": [test.to_json() for test in tests]}
        )

    async def _run_events(self, request: web.Request) -> web.Response:
        replay = self._replay_or_404()
        test_id = request.match_info["test"]
        loop = asyncio.get_running_loop()
        try:
            test, events = await loop.run_in_executor(self._workers, replay.test_events, test_id)
        except UnknownTest as e:
            return _answer(404, error=str(e))
        except RunFolderError as e:  # its timeline vanished or cannot be read
            return _answer(500, error=str(e))
        return web.json_response({**test.to_json(), "events": events}, dumps=_dumps)

    def _replay_or_404(self) -> ReplaySource:
        if self.replay is None:
            raise web.HTTPNotFound(text="this page is live, not a replay of a finished run")
        return self.replay


@web.middleware
async def _security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    response.headers.setdefault("Content-Security-Policy", _CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    # Nothing the page links to learns its address (nor, before the redirect, its token).
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    return response


def _behind(lost: int) -> str:
    return (
        f"this page fell behind the bench and missed {lost} events: its stream ends here; it "
        "reconnects and starts again from the recent history"
    )


async def _json_body(request: web.Request) -> object:
    # A JSON content type makes a cross-site form post impossible without a CORS preflight,
    # which this server never grants.
    if request.content_type != "application/json":
        raise BadInput("body", f"expected application/json, got {request.content_type or 'nothing'}")
    try:
        return await request.json()
    except ValueError as e:
        raise BadInput("body", f"not JSON: {e}") from e


def _answer(status: int, **fields: Any) -> web.Response:
    return web.json_response({"ok": status == 200, **fields}, status=status)


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str)


def _sse(events: list[Event]) -> bytes:
    return "".join(f"data: {_dumps(event)}\n\n" for event in events).encode("utf-8")
