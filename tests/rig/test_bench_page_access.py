"""Who may use the bench page, over raw HTTP (http.client and sockets, so that every header is
the test's): the Host must name the server (DNS rebinding), the Origin must be the page's, the
run's token must come with every request, and the event streams are capped and never slow the
rig down."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest

from rig.bench_page.access import BindRefused, PageAccess, check_bind, exposure_warning, is_loopback
from rig.bench_page.hub import EventHub
from rig.bench_page.server import BenchServer
from tests.rig.bench_browser import INFO, FakeActions

TIMEOUT = 10.0

Json = dict[str, Any]


@pytest.fixture
def hub() -> EventHub:
    return EventHub()


@pytest.fixture
def actions() -> FakeActions:
    return FakeActions()


@pytest.fixture
def server(hub: EventHub, actions: FakeActions) -> Iterator[BenchServer]:
    running = BenchServer(hub, actions, dict(INFO), max_streams=3)
    running.start(timeout=TIMEOUT)
    yield running
    running.stop(timeout=TIMEOUT)


def ask(
    server: BenchServer, method: str, path: str, headers: dict[str, str], body: bytes | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One request with exactly ``headers`` (Host included when given): status, headers, body."""
    connection = http.client.HTTPConnection("127.0.0.1", port_of(server), timeout=TIMEOUT)
    try:
        connection.putrequest(method, path, skip_host="Host" in headers, skip_accept_encoding=True)
        for name, value in headers.items():
            connection.putheader(name, value)
        if body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def port_of(server: BenchServer) -> int:
    port = urllib.parse.urlsplit(server.url).port
    assert port is not None, server.url
    return port


def error(body: bytes) -> str:
    answer: Json = json.loads(body)
    assert answer["ok"] is False
    return str(answer["error"])


def bearer(server: BenchServer) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.token}"}


def own_host(server: BenchServer) -> str:
    return f"127.0.0.1:{port_of(server)}"


# -- Host: DNS rebinding --------------------------------------------------------------------------


def test_a_host_that_is_not_the_servers_is_refused_even_with_the_token(server: BenchServer) -> None:
    # A page on rebind.example whose name now resolves to 127.0.0.1 reaches the socket, but its
    # requests name its own host.
    port = port_of(server)
    for host in (
        f"rebind.example:{port}",
        "rebind.example",
        f"127.0.0.1:{port + 1}",
        f"localhost.evil:{port}",
    ):
        status, _, body = ask(server, "GET", "/api/info", {"Host": host, **bearer(server)})
        assert status == 421, f"Host {host!r} was answered {status}: {body!r}"
        assert "DNS rebinding" in error(body) and host in error(body)
        status, _, body = ask(
            server,
            "POST",
            "/api/action/power_cut",
            {"Host": host, "Content-Type": "application/json", **bearer(server)},
            b"{}",
        )
        assert status == 421, f"a power cut with Host {host!r} was answered {status}: {body!r}"
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}"):
        status, _, body = ask(server, "GET", "/api/info", {"Host": host, **bearer(server)})
        assert status == 200, f"the server's own name {host!r} was refused: {body!r}"


def test_a_request_without_host_is_refused(server: BenchServer) -> None:
    with socket.create_connection(("127.0.0.1", port_of(server)), timeout=TIMEOUT) as raw:
        raw.sendall(f"GET /api/info HTTP/1.0\r\nAuthorization: Bearer {server.token}\r\n\r\n".encode())
        answer = b""
        while chunk := raw.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.0 421") or answer.startswith(b"HTTP/1.1 421"), answer[:200]


def test_allowed_hosts_follow_the_addresses_bound(hub: EventHub, actions: FakeActions) -> None:
    with BenchServer(hub, actions, dict(INFO), host="::1") as running:
        port = port_of(running)
        assert running.url == f"http://[::1]:{port}/"
        connection = http.client.HTTPConnection("::1", port, timeout=TIMEOUT)
        connection.request("GET", "/api/info", headers={"Host": f"[::1]:{port}", **bearer(running)})
        assert connection.getresponse().status == 200
        connection.close()
    access = PageAccess(["127.0.0.1"], 8420, "127.0.0.1", "t")
    assert access.hosts == {"127.0.0.1:8420", "localhost:8420"}
    assert not access.host_allowed("[::1]:8420"), "not bound there"
    assert PageAccess(["127.0.0.1"], 80, "localhost", "t").host_allowed("localhost"), "port 80 is left out"


@pytest.mark.integration  # it listens beyond loopback
def test_a_wildcard_server_answers_for_this_machines_addresses_only(
    hub: EventHub, actions: FakeActions
) -> None:
    with BenchServer(hub, actions, dict(INFO), host="0.0.0.0") as running:
        port = port_of(running)
        for host in (f"127.0.0.1:{port}", f"127.0.0.2:{port}", f"{socket.gethostname()}:{port}"):
            status, _, body = ask(running, "GET", "/api/info", {"Host": host, **bearer(running)})
            assert status == 200, f"{host!r}: {status} {body!r}"
        # An address literal of another machine, and any other name, is not this server's.
        for host in (f"192.0.2.7:{port}", f"rebind.example:{port}", f"127.0.0.1:{port + 1}"):
            status, _, _ = ask(running, "GET", "/api/info", {"Host": host, **bearer(running)})
            assert status == 421, f"{host!r} was answered {status}"


# -- Origin ---------------------------------------------------------------------------------------


def test_a_cross_origin_post_is_refused_even_when_its_host_is_right(
    server: BenchServer, actions: FakeActions
) -> None:
    port = port_of(server)
    post = {"Host": own_host(server), "Content-Type": "application/json", **bearer(server)}
    # Before: Origin was compared with the request's own Host, so a rebinding page whose Host
    # and Origin agree passed. Now both must be the server's.
    for origin in (
        f"http://rebind.example:{port}",
        "http://evil.example",
        "null",
        f"https://127.0.0.1:{port}",
    ):
        status, _, body = ask(server, "POST", "/api/action/soft_reset", {**post, "Origin": origin}, b"{}")
        assert status == 403 and "cross-origin" in error(body), f"Origin {origin!r}: {status} {body!r}"
    status, _, body = ask(
        server, "POST", "/api/action/soft_reset", {**post, "Origin": f"http://localhost:{port}"}, b"{}"
    )
    assert status == 200, body
    assert actions.ran == ["soft_reset"]


# -- the token ------------------------------------------------------------------------------------


def test_every_request_needs_the_runs_token(server: BenchServer, actions: FakeActions) -> None:
    host = {"Host": own_host(server)}
    for method, path in (
        ("GET", "/"),
        ("GET", "/api/info"),
        ("GET", "/api/events"),
        ("GET", "/static/bench.js"),
    ):
        status, _, body = ask(server, method, path, host)
        assert status == 401, f"{method} {path} without a token: {status}"
        assert "?token=" in error(body) and "rig up" in error(body), body
    post = {**host, "Content-Type": "application/json"}
    status, _, body = ask(server, "POST", "/api/action/power_cut", post, b"{}")
    assert status == 401 and actions.ran == [], body
    wrong = "x" * len(server.token)
    for headers in ({"Authorization": f"Bearer {wrong}"}, {"Cookie": f"rig_bench_{port_of(server)}={wrong}"}):
        status, _, body = ask(server, "POST", "/api/action/power_cut", {**post, **headers}, b"{}")
        assert status == 403 and "wrong token" in error(body), body
    status, _, body = ask(server, "GET", f"/?token={wrong}", host)
    assert status == 403 and "wrong token" in error(body)
    assert actions.ran == []
    status, _, _ = ask(server, "POST", "/api/action/soft_reset", {**post, **bearer(server)}, b"{}")
    assert status == 200 and actions.ran == ["soft_reset"]


def test_the_printed_url_sets_a_strict_cookie_and_redirects_to_the_clean_url(server: BenchServer) -> None:
    assert server.page_url == f"{server.url}?token={server.token}"
    assert len(server.token) >= 40, "secrets.token_urlsafe(32)"
    status, headers, _ = ask(server, "GET", f"/?token={server.token}", {"Host": own_host(server)})
    assert status == 303 and headers["location"] == "/"
    cookie = headers["set-cookie"]
    name = f"rig_bench_{port_of(server)}"
    assert cookie.startswith(f"{name}={server.token};"), cookie
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/"} <= flags, cookie
    status, _, body = ask(
        server, "GET", "/api/info", {"Host": own_host(server), "Cookie": f"{name}={server.token}"}
    )
    assert status == 200 and json.loads(body)["board"] == "vtest"


def test_each_run_has_its_own_token(hub: EventHub, actions: FakeActions) -> None:
    with BenchServer(hub, actions, dict(INFO)) as one, BenchServer(hub, actions, dict(INFO)) as two:
        assert one.token != two.token
        status, _, _ = ask(two, "GET", "/api/info", {"Host": own_host(two), **bearer(one)})
        assert status == 403


# -- the event streams ----------------------------------------------------------------------------


class RawStream:
    """An event stream on a socket of its own, read only when asked."""

    def __init__(self, server: BenchServer, receive_buffer: int | None = None) -> None:
        self.socket = socket.socket()
        if receive_buffer is not None:  # before connect: the window is agreed then
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.socket.settimeout(TIMEOUT)
        self.socket.connect(("127.0.0.1", port_of(server)))
        head = f"GET /api/events HTTP/1.1\r\nHost: {own_host(server)}\r\n"
        self.socket.sendall(f"{head}Authorization: Bearer {server.token}\r\n\r\n".encode())
        self.received = b""

    def read_until(self, marker: bytes, awaited: str) -> bytes:
        while marker not in self.received:
            try:
                chunk = self.socket.recv(65536)
            except TimeoutError:
                raise AssertionError(
                    f"timed out after {TIMEOUT}s waiting for {awaited}; "
                    f"last received: {self.received[-300:]!r}"
                ) from None
            if not chunk:
                raise AssertionError(
                    f"the stream ended while waiting for {awaited}: {self.received[-300:]!r}"
                )
            self.received += chunk
        return self.received

    def close(self) -> None:
        self.socket.close()


def test_open_event_streams_are_capped(server: BenchServer) -> None:
    streams = [RawStream(server) for _ in range(server.max_streams)]
    try:
        for stream in streams:
            stream.read_until(b"retry: 2000", "an open stream's first line")
        extra = RawStream(server)
        try:
            answer = extra.read_until(b"\r\n\r\n", f"the answer to stream {server.max_streams + 1}")
            head = answer.split(b"\r\n", 1)[0]
            assert head == b"HTTP/1.1 503 Service Unavailable", f"stream {server.max_streams + 1}: {head!r}"
            body = extra.read_until(b"}", "the refusal's body").split(b"\r\n\r\n", 1)[1]
        finally:
            extra.close()
        assert f"max_streams {server.max_streams}" in error(body) and "--page-streams" in error(body)
        # The rest of the page still answers, and a closed stream frees its place.
        status, _, _ = ask(server, "GET", "/api/info", {"Host": own_host(server), **bearer(server)})
        assert status == 200
        streams.pop().close()
        again = _stream_when_free(server)
        streams.append(again)
    finally:
        for stream in streams:
            stream.close()


def _stream_when_free(server: BenchServer) -> RawStream:
    """A new stream once the server has seen a closed one go (it notices on its next poll)."""
    for _ in range(100):
        stream = RawStream(server)
        answer = stream.read_until(b"\r\n\r\n", "the answer's head")
        if answer.startswith(b"HTTP/1.1 200"):
            return stream
        stream.close()
        threading.Event().wait(0.1)  # no event says when the server saw the socket close
    raise AssertionError("no stream could open again after one of the capped streams closed")


def test_a_stalled_stream_never_holds_up_publishing_and_is_ended_with_a_note(actions: FakeActions) -> None:
    hub = EventHub(keep=200)
    with BenchServer(hub, actions, dict(INFO), max_streams=2) as running:
        stalled = RawStream(running, receive_buffer=4096)
        try:
            stalled.read_until(b"retry: 2000", "the stalled stream's first line")
            # Far more than the socket buffers hold: the stream's writes wait for a reader that
            # does not read, while the rig goes on publishing (the serial reader's thread).
            line = "x" * 2000
            done = threading.Event()

            def publish() -> None:
                for i in range(20000):
                    hub.publish("console", text=f"{i} {line}")
                done.set()

            publisher = threading.Thread(target=publish, name="test-publisher")
            publisher.start()
            publisher.join(60)
            assert done.is_set(), "publishing waited for a stream that does not read"
            # Now it reads: what was in flight, then the note, then the end of its stream.
            received = stalled.read_until(b"event: behind", "the note that the stream fell behind")
            note = received.split(b"event: behind\ndata: ", 1)[1].split(b"\n", 1)[0]
            facts = json.loads(note)
            assert facts["lost"] > 0 and "fell behind" in facts["detail"], facts
            # The stream ends after the note: the page reconnects and starts from the history.
            stalled.read_until(b"0\r\n\r\n", "the end of the stream after the note")
        finally:
            stalled.close()


def test_a_stream_that_reads_nothing_for_long_is_dropped(actions: FakeActions) -> None:
    hub = EventHub(keep=100000)
    with BenchServer(hub, actions, dict(INFO), max_streams=1) as running:
        running.write_timeout = 0.5
        stalled = RawStream(running, receive_buffer=4096)
        try:
            stalled.read_until(b"retry: 2000", "the stalled stream's first line")
            for i in range(5000):
                hub.publish("console", text=f"{i} {'y' * 2000}")
            # Its place comes free without it ever reading again.
            free = _stream_when_free(running)
            free.close()
        finally:
            stalled.close()


def test_a_subscription_that_falls_behind_counts_what_it_lost() -> None:
    hub = EventHub(keep=10)
    subscription = hub.subscribe()
    for i in range(25):
        hub.publish("console", text=str(i))
    events = subscription.take(0, limit=100)
    assert subscription.lost == 15 and [e["text"] for e in events] == [str(i) for i in range(15, 25)]
    hub.publish("console", text="next")
    assert [e["text"] for e in subscription.take(0)] == ["next"] and subscription.lost == 15
    subscription.close()
    assert subscription.take(0) == [] and subscription.closed


# -- where the page may listen ----------------------------------------------------------------------


def test_a_page_host_beyond_loopback_needs_page_expose() -> None:
    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.5"):
        assert is_loopback(host), host
        check_bind(host, expose=False)
    for host in ("0.0.0.0", "::", "192.0.2.7", ""):
        with pytest.raises(BindRefused, match="--page-expose"):
            check_bind(host, expose=False)
        check_bind(host, expose=True)
    warning = exposure_warning("0.0.0.0", 8420)
    for what in ("console", "MQTT history", "inject", "cut its power", "token", "unencrypted"):
        assert what in warning, f"the warning does not say {what!r}: {warning}"
