"""The virtual board against a broker that misbehaves on purpose (rig.scripted_broker).

One board and one scripted broker for the whole module: the board is deployed once, pointed at
the scripted broker on its own network link (the host end of its veth pair, where the rig's
broker normally listens), and every scenario starts by closing the connection the board holds,
so that the board's next connection is the scenario's. Each scenario ends with the board back
on a well-served connection (subscribed, "online"), which is how the next one finds it.

Two witnesses for each scenario: the wire, which the scripted broker judges packet by packet
(the scenario fails naming the step, what it awaited and what came), and the console: the
``@rig`` events docs/broker-scenarios.md promises, and no traceback, no reboot.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from rig.board import Board
from rig.board.virtual import VirtualBoard
from rig.deadline import Deadline
from rig.evidence import junit_properties
from rig.scripted_broker import Scenario, ScriptedBroker, Timing, catalogue
from rig.scripted_broker.conformance import Conformance
from rig.scripted_broker.scenarios import edge_topic_prefix
from rig.serial_events import event_matches, parse_event
from rig.session import RigSession

# The board's settings for this module (config.json): short bounds, so that the scenarios that
# wait them out stay short.
LOOP_PERIOD = 0.1
KEEPALIVE = 2
SOCKET_TIMEOUT = 2.0
BACKOFF_INITIAL = 0.5
TIMING = Timing(
    socket_timeout=SOCKET_TIMEOUT,
    keepalive=KEEPALIVE,
    backoff_initial=BACKOFF_INITIAL,
    loop_period=LOOP_PERIOD,
)
SCENARIOS = {s.name: s for s in catalogue(TIMING)}
# This module's results so far: each scenario's JUnit properties carry the running summary, and
# the table is written as conformance.md into the run's session folder at the end (the report
# builds its own from the properties: rig.report.conformance).
CONFORMANCE = Conformance(total=len(SCENARIOS))

# What the console must show for each scenario (docs/broker-scenarios.md): (event, fields).
EVENTS: dict[str, list[tuple[str, dict[str, Any]]]] = {
    **{f"connack-refused-{c}": [("connect_refused", {"code": c, "reconnect": True})] for c in range(1, 6)},
    "connack-late": [("broker_unreachable", {"reconnect": True})],
    "suback-failure": [("error", {"type": "SubscribeRefused"})],
    "closed-before-subscribe": [("connected", {"reconnect": True})],
    "pingresp-withheld": [("link_lost", {})],
    "publish-qos1": [("received", {"hex": b"qos1".hex()})],
    "publish-qos2": [("received", {"hex": b"qos2".hex()})],
    "publish-qos1-dup": [("received", {"hex": b"dup1".hex()}), ("received", {"hex": b"dup1".hex()})],
    "publish-qos2-dup": [("received", {"hex": b"dup2".hex()})],
    "closed-mid-packet": [("connection_error", {})],
    "stalled-mid-packet": [("connection_error", {})],
    "length-five-bytes": [("error", {"type": "MalformedPacket"})],
    "length-too-large": [("connection_error", {})],
    "suback-unasked": [("error", {"type": "UnexpectedPacket"})],
    "pubrel-stray": [("received", {"hex": b"after".hex()})],
    "retained-unsubscribed": [("error", {"type": "UnexpectedTopic"})],
    "topic-utf8": [("received", {"hex": b"utf8".hex()})],
    "topic-longest": [("received", {"hex": b"longest".hex()})],
    "retained-empty": [("received", {"hex": ""})],
    "reconnect-closes-old-socket": [("connected", {"reconnect": True})] * 3,
}
# Events a scenario must not show more of than EVENTS says (a message delivered twice).
EXACT = {"publish-qos2-dup": "received"}


@dataclasses.dataclass
class ScriptedRig:
    board: Board
    broker: ScriptedBroker
    echo_topic: bytes
    status_topic: bytes


@pytest.fixture(scope="module")
def scripted(rig_session: RigSession) -> Iterator[ScriptedRig]:
    board = rig_session.board()
    transport = board.transport
    if not isinstance(transport, VirtualBoard):
        pytest.skip("the scripted broker runs on the virtual board's link; a USB board reaches it over Wi-Fi")
    if rig_session.settings.tls:
        pytest.skip("the scripted broker speaks plain MQTT; this run is over TLS")
    host = transport.network.host_address if transport.network is not None else "127.0.0.1"
    # In the run's session folder: kept with the run, and linked from its report.
    rig_session.dir.mkdir(parents=True, exist_ok=True)
    log = rig_session.dir / "scripted-broker.log"
    broker = ScriptedBroker(host, log)
    try:
        config = rig_session.config_for(board, LOOP_PERIOD, "reference", keepalive=KEEPALIVE)
        config = dataclasses.replace(
            config,
            # Multi-byte characters, and the longest echo topic the firmware takes, for every
            # scenario: topic-utf8 and topic-longest judge them, on this one deploy.
            topic_prefix=edge_topic_prefix(config.topic_prefix),
            broker_host=host,
            broker_port=broker.port,
            tls_ca=None,
            app={
                **config.app,
                "socket_timeout": SOCKET_TIMEOUT,
                "backoff_initial": BACKOFF_INITIAL,
                "backoff_max": BACKOFF_INITIAL,
            },
        )
        strategy = rig_session.strategy()
        # The hello goes to the scripted broker: the console's "published" event is its witness
        # (a host client's, which a test of the HIL suite may have left here, is on the other broker).
        witness, strategy.hello_witness = strategy.hello_witness, None
        try:
            rig_session.run_firmware(config)
        finally:
            strategy.hello_witness = witness
        yield ScriptedRig(board, broker, config.echo_topic.encode(), config.status_topic.encode())
    finally:
        broker.stop()
        (rig_session.dir / "conformance.md").write_text(CONFORMANCE.table(), encoding="utf-8")
        # The next test that wants the board redeploys it with its own config.
        rig_session.strategy().restart_before_next_run()


def console_problems(board: Board, start: int, name: str) -> list[str]:
    """What the console since ``start`` shows against docs/broker-scenarios.md for ``name``."""
    lines = board.capture.lines(start)
    events = [e for e in (parse_event(line.text) for line in lines) if e is not None]
    problems = [f"the firmware crashed: {line.text}" for line in lines if line.text.startswith("Traceback")]
    problems += [f"the board rebooted: {e}" for e in events if e.get("ev") == "boot"]
    wanted = EVENTS[name]
    for ev, fields in wanted:
        need = wanted.count((ev, fields))
        found = [e for e in events if event_matches(e, ev, fields)]
        if len(found) < need:
            problems.append(
                f"no{' ' + str(need) if need > 1 else ''} {ev!r} event with {fields} on the console"
            )
    exact = EXACT.get(name)
    if exact is not None:
        count = sum(1 for e in events if e.get("ev") == exact)
        allowed = sum(1 for ev, _ in wanted if ev == exact)
        if count > allowed:
            problems.append(f"{count} {exact!r} events where {allowed} belong: a message delivered twice")
    return problems


def await_console(board: Board, start: int, name: str, timeout: float) -> list[str]:
    """The console's problems, given it ``timeout`` to print what it was still printing."""
    deadline = Deadline(timeout)
    while True:
        problems = console_problems(board, start, name)
        if not problems or deadline.expired:
            return problems
        board.capture.wait_text(bool, board.capture.next_index, Deadline(deadline.remaining_or(0.5)), False)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_broker_scenario(name: str, scripted: ScriptedRig, request: pytest.FixtureRequest) -> None:
    scenario: Scenario = SCENARIOS[name]
    properties = request.node.user_properties
    properties.append((junit_properties.MQTT_SCENARIO, name))
    properties.append((junit_properties.MQTT_STATEMENT, scenario.statement))
    properties.append((junit_properties.MQTT_EXPECTED, scenario.title))
    passed = False
    try:
        start = scripted.board.capture.next_index
        boots = getattr(scripted.board.transport, "boots", None)
        scenario.play(scripted.broker, scripted.echo_topic, scripted.status_topic)
        problems = await_console(scripted.board, start, name, TIMING.at_once)
        assert getattr(scripted.board.transport, "boots", None) == boots, (
            "the board rebooted during the scenario"
        )
        assert not problems, (
            f"scenario {name} ({scenario.statement}: {scenario.title}): "
            + "; ".join(problems)
            + f"; console: {scripted.board.capture.session_log}; broker log: {scripted.broker.log_path}"
        )
        passed = True
    finally:
        CONFORMANCE.record(name, scenario.statement, passed)
        properties.append((junit_properties.MQTT_CONFORMANCE, CONFORMANCE.summary()))
