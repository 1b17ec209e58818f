"""The bench page's server, over real HTTP: a real EventHub, a recording BenchActions, and
finished runs to replay (hand-made with the rig's Timeline, and one a real HIL run left)."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rig.bench_page.actions import ACTIONS
from rig.bench_page.hub import EventHub
from rig.bench_page.replay import FINISHED, ReplayActions, ReplaySource, timeline_events
from rig.bench_page.server import MAX_PAYLOAD, BenchServer, PageServerError, without_passwords
from rig.errors import BoardUnreachable
from rig.evidence.run_folder import NotARunFolder, UnknownTest
from tests.rig.bench_browser import BINARY, ECHO, INFO, ONE, STATUS, T0, TWO, FakeActions, hil_run, write_run

# Every read of the server is bounded by this.
TIMEOUT = 10.0

Json = dict[str, Any]


# -- talking to the server ------------------------------------------------------------------------


def opened(server: BenchServer, path: str) -> Any:
    """``path`` of the server opened with the run's token, as a script does (the browser's cookie
    is tested in test_bench_page_access.py and the browser tests)."""
    request = urllib.request.Request(server.url + path, headers={"Authorization": f"Bearer {server.token}"})
    return urllib.request.urlopen(request, timeout=TIMEOUT)


def get(server: BenchServer, path: str) -> tuple[int, Json]:
    try:
        with opened(server, path) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def post(
    server: BenchServer,
    path: str,
    body: object,
    *,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> tuple[int, Json]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(
        server.url + path,
        data=data,
        method="POST",
        headers={"Content-Type": content_type, "Authorization": f"Bearer {server.token}", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def get_text(server: BenchServer, path: str) -> str:
    with opened(server, path) as response:
        return str(response.read().decode())


class Stream:
    """One page's event stream, read a block at a time; each read bounded by TIMEOUT."""

    def __init__(self, server: BenchServer) -> None:
        self.response = opened(server, "api/events")
        self.blocks: list[list[str]] = []

    def block(self, awaited: str) -> list[str]:
        lines: list[str] = []
        try:
            while True:
                line = self.response.readline().decode()
                if line in ("\n", ""):
                    break
                lines.append(line.rstrip("\n"))
        except TimeoutError:
            raise AssertionError(
                f"timed out after {TIMEOUT}s waiting for {awaited}; the stream gave "
                f"{self.blocks[-10:]} then {lines}"
            ) from None
        if not lines:
            raise AssertionError(f"the stream ended while waiting for {awaited}; it gave {self.blocks[-10:]}")
        self.blocks.append(lines)
        return lines

    def events(self, count: int, awaited: str) -> list[Json]:
        """The next ``count`` data events, skipping comments and the retry line."""
        found: list[Json] = []
        while len(found) < count:
            found += [json.loads(line[6:]) for line in self.block(awaited) if line.startswith("data: ")]
        return found

    def close(self) -> None:
        self.response.close()


def page_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("bench-page")]


@pytest.fixture
def hub() -> EventHub:
    return EventHub()


@pytest.fixture
def actions() -> FakeActions:
    return FakeActions(blocked={"power_cut": "no power switch on this bench"})


@pytest.fixture
def server(hub: EventHub, actions: FakeActions) -> Iterator[BenchServer]:
    running = BenchServer(hub, actions, dict(INFO))
    running.start(timeout=TIMEOUT)
    yield running
    running.stop(timeout=TIMEOUT)
    assert not page_threads(), f"threads left after stop: {page_threads()}"


# -- the page and its info ------------------------------------------------------------------------


def test_info_names_board_topics_mode_and_why_actions_are_unavailable(server: BenchServer) -> None:
    status, info = get(server, "api/info")
    assert status == 200
    assert info["board"] == "vtest" and info["echo_topic"] == ECHO and info["status_topic"] == STATUS
    assert info["mode"] == "live"
    assert info["unavailable"] == {"power_cut": "no power switch on this bench"}
    assert set(info["actions"]) == set(ACTIONS)
    assert abs(info["now"] - time.time()) < 5


def test_info_never_shows_a_password(hub: EventHub, actions: FakeActions) -> None:
    info = {**INFO, "mqtt": "mqtt://board:s3cret-pw@127.0.0.1:1883", "more": ["ws://u:pw2@h:1/mqtt"]}
    with BenchServer(hub, actions, info) as running:
        raw = get_text(running, "api/info")
    assert "s3cret-pw" not in raw and "pw2" not in raw
    assert "mqtt://board:***@127.0.0.1:1883" in raw
    assert without_passwords({"a": ("x://h/p", 1)}) == {"a": ["x://h/p", 1]}


def test_page_and_its_assets_are_served_and_load_nothing_from_elsewhere(server: BenchServer) -> None:
    with opened(server, "") as response:
        page = response.read().decode()
        assert response.headers["Content-Type"].startswith("text/html")
        csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    for element in ('id="console"', 'id="messages"', 'id="status"', 'id="plot"', 'id="inject-topic"'):
        assert element in page
    for name, kind in (("bench.js", "text/javascript"), ("bench.css", "text/css")):
        with opened(server, f"static/{name}") as response:
            assert response.headers["Content-Type"].startswith(kind)
            text = response.read().decode()
        # The SVG namespace is a name, not a request; any other address would be one.
        addresses = [w for w in text.replace("http://www.w3.org/2000/svg", "").split() if "://" in w]
        assert not addresses, f"{name} refers to {addresses}"
    assert "://" not in page
    for missing in ("static/nothing.js", "static/..%2Fserver.py", "static/%2E%2E/server.py"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            opened(server, missing)
        assert refused.value.code == 404


# -- the event stream -----------------------------------------------------------------------------


def test_stream_gives_the_history_first_then_live_events(server: BenchServer, hub: EventHub) -> None:
    hub.publish("console", text="first line")
    hub.publish("status", value="online")
    stream = Stream(server)
    try:
        assert stream.block("the retry line") == ["retry: 2000"]
        history = stream.events(2, "the two events published before the page opened")
        assert [e["kind"] for e in history] == ["console", "status"]
        assert history[0]["text"] == "first line" and history[1]["value"] == "online"
        hub.publish("mqtt", topic=ECHO, payload="hello", hex=b"hello".hex(), qos=0, retain=False)
        (live,) = stream.events(1, "the message published after the page opened")
        assert live["kind"] == "mqtt" and live["payload"] == "hello" and live["topic"] == ECHO
    finally:
        stream.close()


def test_stream_sends_keepalives_and_ends_when_the_hub_closes(server: BenchServer, hub: EventHub) -> None:
    server.keepalive_interval = 0.2
    stream = Stream(server)
    try:
        stream.block("the retry line")
        assert stream.block("a keep-alive comment") == [": keep-alive"]
        hub.close()
        assert stream.block("the end event") == ["event: end", "data: {}"]
    finally:
        stream.close()


def test_open_streams_do_not_hold_up_the_server(server: BenchServer, hub: EventHub) -> None:
    # Subscription.take blocks: were it called on the server's loop, nothing else would answer.
    streams = [Stream(server) for _ in range(4)]
    try:
        for stream in streams:
            stream.block("the retry line")
        started = time.monotonic()
        status, _ = get(server, "api/info")
        assert status == 200 and time.monotonic() - started < 2.0
        hub.publish("console", text="to every page")
        for stream in streams:
            assert stream.events(1, "the line published to every page")[0]["text"] == "to every page"
    finally:
        for stream in streams:
            stream.close()


def test_stop_ends_open_streams_is_idempotent_and_leaves_no_thread(
    hub: EventHub, actions: FakeActions
) -> None:
    running = BenchServer(hub, actions, dict(INFO))
    running.start(timeout=TIMEOUT)
    stream = Stream(running)
    stream.block("the retry line")
    started = time.monotonic()
    running.stop(timeout=TIMEOUT)
    assert time.monotonic() - started < 5.0
    assert stream.block("the end event") == ["event: end", "data: {}"]
    stream.close()
    running.stop(timeout=TIMEOUT)
    assert not page_threads(), f"threads left after stop: {page_threads()}"
    assert not hub.closed, "the hub is the caller's: the server must not close it"


def test_stop_waits_for_an_action_in_progress(hub: EventHub) -> None:
    actions = FakeActions(hold=threading.Event())
    running = BenchServer(hub, actions, dict(INFO))
    running.start(timeout=TIMEOUT)
    answers: list[object] = []

    def ask() -> None:
        # The server stops before the power cut is done: the page gets no answer, only the cut.
        try:
            answers.append(post(running, "api/action/power_cut", {}))
        except OSError as e:
            answers.append(e)

    asking = threading.Thread(target=ask)
    asking.start()
    assert actions.started.wait(TIMEOUT), "the power cut was never started"
    # Past the time the server gives open requests to finish (about a second), within this bound.
    with pytest.raises(PageServerError, match="power_cut was still being done after 2s"):
        running.stop(timeout=2.0)
    assert actions.hold is not None
    actions.hold.set()
    running.stop(timeout=TIMEOUT)
    asking.join(TIMEOUT)
    assert actions.ran == ["power_cut"] and len(answers) == 1
    assert not page_threads(), f"threads left after stop: {page_threads()}"


def test_start_on_a_busy_port_says_where(hub: EventHub, actions: FakeActions) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        running = BenchServer(hub, actions, dict(INFO), port=port)
        with pytest.raises(PageServerError, match=f"could not listen on 127.0.0.1:{port}"):
            running.start(timeout=TIMEOUT)
        running.stop(timeout=TIMEOUT)
    assert not page_threads()
    with pytest.raises(PageServerError, match="not listening"):
        _ = BenchServer(hub, actions, dict(INFO)).url


# -- inject and the buttons -----------------------------------------------------------------------


def test_inject_publishes_what_the_page_asked(
    server: BenchServer, hub: EventHub, actions: FakeActions
) -> None:
    status, answer = post(
        server, "api/inject", {"topic": ECHO, "payload": "11 22 3311", "qos": 1, "retain": True}
    )
    assert (status, answer["ok"]) == (200, True), answer
    assert actions.injected == [(ECHO, b"11 22 3311", 1, True)]
    assert "11 22 3311" in answer["detail"] and ECHO in answer["detail"]
    (event,) = [e for e in hub.history() if e["kind"] == "action"]
    assert event["name"] == "inject" and event["ok"] is True
    assert event["topic"] == ECHO and event["hex"] == b"11 22 3311".hex()
    # At the limit is still fine; QoS and retain have defaults.
    status, answer = post(server, "api/inject", {"topic": ECHO, "payload": "x" * MAX_PAYLOAD})
    assert status == 200, answer
    assert actions.injected[-1] == (ECHO, b"x" * MAX_PAYLOAD, 0, False)


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"topic": ECHO, "payload": "p", "qos": 3}, "qos", "expected 0, 1 or 2"),
        ({"topic": ECHO, "payload": "p", "qos": "1"}, "qos", "expected 0, 1 or 2"),
        ({"topic": ECHO, "payload": "p", "qos": True}, "qos", "expected 0, 1 or 2"),
        ({"topic": "", "payload": "p"}, "topic", "required"),
        ({"payload": "p"}, "topic", "required"),
        ({"topic": "rig/vtest/#", "payload": "p"}, "topic", "not on a filter"),
        ({"topic": ECHO, "payload": "é" * (MAX_PAYLOAD // 2 + 1)}, "payload", f"{MAX_PAYLOAD + 2} bytes"),
        ({"topic": ECHO, "payload": 5}, "payload", "expected text"),
        ({"topic": ECHO, "payload": "p", "retain": "yes"}, "retain", "expected true or false"),
        (["not", "an", "object"], "body", "JSON object"),
        (b"{not json", "body", "not JSON"),
    ],
    ids=[
        "qos-3",
        "qos-text",
        "qos-bool",
        "topic-empty",
        "topic-missing",
        "topic-filter",
        "payload-long",
        "payload-number",
        "retain-text",
        "body-list",
        "body-garbled",
    ],
)
def test_inject_refuses_bad_input_naming_the_field(
    server: BenchServer, hub: EventHub, actions: FakeActions, body: object, field: str, words: str
) -> None:
    status, answer = post(server, "api/inject", body)
    assert status == 400, answer
    assert answer["ok"] is False and answer["field"] == field
    assert answer["error"].startswith(f"{field}: ") and words in answer["error"], answer["error"]
    assert actions.injected == []
    assert not [e for e in hub.history() if e["kind"] == "action"], "bad input is answered, not published"


def test_posts_must_be_json_from_this_page(server: BenchServer, actions: FakeActions) -> None:
    # A form on another web site can post text/plain without asking; it must not cut the power.
    status, answer = post(server, "api/action/soft_reset", b"x=1", content_type="text/plain")
    assert status == 400 and "application/json" in answer["error"]
    status, answer = post(server, "api/action/soft_reset", {}, headers={"Origin": "http://evil.example"})
    assert status == 403 and "cross-origin" in answer["error"]
    status, _ = post(server, "api/action/soft_reset", {}, headers={"Origin": server.url.rstrip("/")})
    assert status == 200
    assert actions.ran == ["soft_reset"]


def test_actions_run_and_errors_map_to_status_codes(
    server: BenchServer, hub: EventHub, actions: FakeActions
) -> None:
    status, answer = post(server, "api/action/soft_reset", {})
    assert (status, answer) == (200, {"ok": True, "detail": "did soft_reset"})
    status, answer = post(server, "api/action/power_cut", {})
    assert status == 403 and answer["error"] == "unavailable: no power switch on this bench"
    actions.failures["interrupt"] = BoardUnreachable("vtest: the port vanished")
    status, answer = post(server, "api/action/interrupt", {})
    assert status == 502 and answer["error"] == "BoardUnreachable: vtest: the port vanished"
    actions.failures["inject"] = BoardUnreachable("broker gone")
    status, answer = post(server, "api/inject", {"topic": ECHO, "payload": "p"})
    assert status == 502 and "broker gone" in answer["error"]
    status, answer = post(server, "api/action/self_destruct", {})
    assert status == 404 and "soft_reset" in answer["error"]
    assert actions.ran == ["soft_reset"]
    done = [(e["name"], e["ok"]) for e in hub.history() if e["kind"] == "action"]
    assert done == [("soft_reset", True), ("power_cut", False), ("interrupt", False), ("inject", False)]


# -- replay ---------------------------------------------------------------------------------------


def test_live_server_has_no_runs(server: BenchServer) -> None:
    for path in ("api/runs", f"api/runs/{ONE}/events"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            opened(server, path)
        assert refused.value.code == 404


def test_replay_lists_the_tests_and_gives_a_timeline_as_hub_events(tmp_path: Path) -> None:
    source = ReplaySource(write_run(tmp_path))
    with BenchServer(EventHub(), ReplayActions(), source.info(), replay=source) as running:
        status, info = get(running, "api/info")
        assert info["mode"] == "replay" and info["board"] == "vtest"
        assert info["unavailable"]["power_cut"] == FINISHED and info["unavailable"]["inject"] == FINISHED
        status, runs = get(running, "api/runs")
        assert status == 200
        assert [(t["id"], t["nodeid"], t["outcome"]) for t in runs["tests"]] == [
            (ONE, "tests/hil/test_echo.py::test_one", "passed"),
            (TWO, "tests/hil/test_echo.py::test_two", "failed"),
        ]
        status, one = get(running, f"api/runs/{ONE}/events")
        assert status == 200 and one["nodeid"] == "tests/hil/test_echo.py::test_one"
        kinds = [e["kind"] for e in one["events"]]
        assert kinds.count("console") == 5 and kinds.count("mqtt") == 5 and kinds.count("status") == 1
        assert [e["t"] for e in one["events"]] == sorted(e["t"] for e in one["events"])
        (inject,) = [e for e in one["events"] if e["kind"] == "action"]
        assert inject["name"] == "inject" and inject["hex"] == b"11 22 3311".hex() and inject["topic"] == ECHO
        binary = [e for e in one["events"] if e["kind"] == "mqtt" and e["hex"] == BINARY.hex()]
        assert binary and binary[0]["payload"] is None
        status, two = get(running, f"api/runs/{TWO}/events")
        assert two["message"] == "E   AssertionError: two went wrong"
        assert [e["value"] for e in two["events"] if e["kind"] == "status"] == ["lost"]
        status, answer = get(running, "api/runs/no_such_test/events")
        assert status == 404 and "no_such_test" in answer["error"] and ONE in answer["error"]
        status, answer = post(running, "api/action/soft_reset", {})
        assert status == 403 and "a finished run" in answer["error"]


def test_timeline_events_convert_each_source() -> None:
    entries: list[dict[str, Any]] = [
        {"t": T0 + 2, "src": "serial", "text": "later"},
        {"t": T0 + 1, "src": "rig", "text": "[rig] note"},
        {"t": T0 + 3, "src": "broker", "text": "broker line"},
        {"src": "serial", "text": "no time"},
        {"t": T0 + 4, "src": "mqtt", "dir": "in", "topic": STATUS, "payload": "maybe", "hex": b"maybe".hex()},
        {
            "t": T0 + 5,
            "src": "mqtt",
            "dir": "in",
            "topic": STATUS,
            "payload": "online",
            "hex": b"online".hex(),
        },
        {"t": T0 + 6, "src": "mqtt", "dir": "in", "topic": ECHO, "payload": "\ufffd", "hex": "ff"},
    ]
    events = timeline_events(entries)
    assert [(e["kind"], e["t"] - T0) for e in events] == [
        ("console", 1),
        ("console", 2),
        ("mqtt", 4),
        ("mqtt", 5),
        ("status", 5),
        ("mqtt", 6),
    ]
    assert events[0]["src"] == "rig" and events[-1]["payload"] is None and events[-1]["hex"] == "ff"


def test_replay_refuses_what_is_not_a_run_naming_the_path(tmp_path: Path) -> None:
    with pytest.raises(NotARunFolder, match=re.escape(f"{tmp_path / 'nothing'}: no such folder")):
        ReplaySource(tmp_path / "nothing")
    (tmp_path / "file.txt").write_text("x", encoding="utf-8")
    with pytest.raises(NotARunFolder, match=re.escape(f"{tmp_path / 'file.txt'}: not a folder")):
        ReplaySource(tmp_path / "file.txt")
    (tmp_path / "empty" / "session").mkdir(parents=True)
    with pytest.raises(NotARunFolder, match=re.escape(f"{tmp_path / 'empty'}: not a run's artifacts folder")):
        ReplaySource(tmp_path / "empty")
    source = ReplaySource(write_run(tmp_path))
    with pytest.raises(UnknownTest, match="no test 'nope'"):
        source.test_events("nope")


def test_replay_takes_one_test_folder_or_a_run_of_several_boards(tmp_path: Path) -> None:
    run = write_run(tmp_path)
    (single,) = ReplaySource(run / TWO).tests()
    assert (single.id, single.nodeid, single.outcome) == (TWO, "tests/hil/test_echo.py::test_two", "failed")
    boards = tmp_path / "boards"
    boards.mkdir()
    run.rename(boards / "vtest")
    assert [t.id for t in ReplaySource(boards).tests()] == [f"vtest/{ONE}", f"vtest/{TWO}"]
    assert ReplaySource(boards).tests()[1].outcome == "failed"


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return hil_run(tmp_path_factory.mktemp("hil") / "artifacts")


def test_replay_of_a_real_run(real_run: Path) -> None:
    source = ReplaySource(real_run)
    tests = {t.nodeid: t for t in source.tests()}
    tutorial = tests["tests/hil/test_echo_loop.py::test_injected_message_keeps_circulating[tutorial]"]
    assert tutorial.outcome == "passed"
    _, events = source.test_events(tutorial.id)
    echoes = [e for e in events if e["kind"] == "mqtt" and e["topic"].endswith("/echo")]
    assert sum(e["payload"] == "11 22 3311" for e in echoes) >= 3
    assert any(e["kind"] == "console" and "11 22 3311" in e["text"] for e in events)
    assert any(e["kind"] == "action" and e["hex"] == b"11 22 3311".hex() for e in events)
    assert any(e["kind"] == "status" and e["value"] == "online" for e in events)
