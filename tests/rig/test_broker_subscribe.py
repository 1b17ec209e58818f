"""The board's SUBSCRIBE against the scripted broker, on a deploy of its own
(docs/broker-scenarios.md, "The board's SUBSCRIBE"):

- topic-past-one-byte: the board's echo topic is 123 bytes, one past what umqtt.simple 1.3.4 can
  put in a SUBSCRIBE (it packs the remaining length, here 128, into one byte). The broker judges
  the SUBSCRIBE of every connection the board makes, the deploy's first one included: a board
  whose SUBSCRIBE is malformed never gets as far as its hello, and the test says what the wire
  carried instead;
- suback-refused-backoff: three SUBSCRIBEs refused (SUBACK 0x80), then granted, then one more
  refused: the waits after the refusals grow, the board echoes once subscribed, and the wait
  after the grant starts again. The deploy's ``backoff_max`` (1 s) is above its
  ``backoff_initial`` (0.25 s); tests/rig/test_broker_scenarios.py keeps the two equal, so that
  the waits of its 24 scenarios stay short.

Witnesses: the wire (the scripted broker judges each packet, and times the waits itself), then
the console (each refusal reported with the wait the firmware chose; no traceback, no reboot).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from rig.board import Board
from rig.board.virtual import VirtualBoard
from rig.errors import RigError
from rig.evidence import junit_properties
from rig.scripted_broker import Scenario, ScriptedBroker, Timing, packets
from rig.scripted_broker.conformance import Conformance
from rig.scripted_broker.connection import Seen
from rig.scripted_broker.decode import Received
from rig.scripted_broker.scenarios import PAST_ONE_BYTE_TOPIC, edge_topic_prefix, subscribe_catalogue
from rig.serial_events import parse_event
from rig.session import RigSession

LOOP_PERIOD = 0.1
KEEPALIVE = 2
SOCKET_TIMEOUT = 2.0
# Three refusals in a row: waits of 0.25, 0.5 and 1 s. Small, because connect_retry.py waits as
# long again before each new connection (each of the scenario's connections is a short one).
BACKOFF_INITIAL = 0.25
BACKOFF_MAX = 1.0
TIMING = Timing(
    socket_timeout=SOCKET_TIMEOUT,
    keepalive=KEEPALIVE,
    backoff_initial=BACKOFF_INITIAL,
    loop_period=LOOP_PERIOD,
    backoff_max=BACKOFF_MAX,
)
SCENARIOS = {s.name: s for s in subscribe_catalogue(TIMING)}
CONFORMANCE = Conformance(total=len(SCENARIOS))

# The waits the firmware reports choosing (its "error" SubscribeRefused events' delay_ms), in
# order: doubled after each refusal, back to backoff_initial after the grant.
REPORTED_WAITS = [250, 500, 1000, 250]


@dataclasses.dataclass
class SubscribingRig:
    board: Board
    broker: ScriptedBroker
    echo_topic: bytes
    status_topic: bytes
    # Why the firmware never came up after the deploy (no hello), or None.
    deploy_error: RigError | None


@pytest.fixture(scope="module")
def subscribing(rig_session: RigSession) -> Iterator[SubscribingRig]:
    board = rig_session.board()
    transport = board.transport
    if not isinstance(transport, VirtualBoard):
        pytest.skip("the scripted broker runs on the virtual board's link; a USB board reaches it over Wi-Fi")
    if rig_session.settings.tls:
        pytest.skip("the scripted broker speaks plain MQTT; this run is over TLS")
    host = transport.network.host_address if transport.network is not None else "127.0.0.1"
    rig_session.dir.mkdir(parents=True, exist_ok=True)
    broker = ScriptedBroker(host, rig_session.dir / "scripted-broker-subscribe.log")
    try:
        config = rig_session.config_for(board, LOOP_PERIOD, "reference", keepalive=KEEPALIVE)
        config = dataclasses.replace(
            config,
            topic_prefix=edge_topic_prefix(config.topic_prefix, length=PAST_ONE_BYTE_TOPIC),
            broker_host=host,
            broker_port=broker.port,
            tls_ca=None,
            app={
                **config.app,
                "socket_timeout": SOCKET_TIMEOUT,
                "backoff_initial": BACKOFF_INITIAL,
                "backoff_max": BACKOFF_MAX,
            },
        )
        strategy = rig_session.strategy()
        # The hello goes to the scripted broker: the console's "published" event is its witness.
        witness, strategy.hello_witness = strategy.hello_witness, None
        deploy_error: RigError | None = None
        try:
            rig_session.run_firmware(config)
        except RigError as e:
            # Judged by the tests, on what the wire carried (see first_subscribes).
            deploy_error = e
        finally:
            strategy.hello_witness = witness
        yield SubscribingRig(
            board, broker, config.echo_topic.encode(), config.status_topic.encode(), deploy_error
        )
    finally:
        broker.stop()
        rig_session.strategy().restart_before_next_run()


def after_connect(broker: ScriptedBroker) -> list[Seen]:
    """What each connection of the board carried first after its CONNECT (pings aside): its
    SUBSCRIBE, or how the connection ended."""
    firsts: list[Seen] = []
    for conn in broker.connections:
        after = [
            s for s in conn.history if not (isinstance(s, Received) and s.kind in ("CONNECT", "PINGREQ"))
        ]
        firsts += after[:1]
    return firsts


def describe(seen: list[Seen]) -> str:
    shown = [s.describe() + (f" [{s.raw[:8].hex(' ')} ...]" if isinstance(s, Received) else "") for s in seen]
    return "; ".join(shown) or "nothing after a CONNECT"


def console_problems(board: Board, start: int, refusals: list[int]) -> list[str]:
    """The console since ``start``: no crash, no reboot, and the refusals' reported waits."""
    lines = board.capture.lines(start)
    events = [e for e in (parse_event(line.text) for line in lines) if e is not None]
    problems = [f"the firmware crashed: {line.text}" for line in lines if line.text.startswith("Traceback")]
    problems += [f"the board rebooted: {e}" for e in events if e.get("ev") == "boot"]
    reported = [
        e.get("delay_ms") for e in events if e.get("ev") == "error" and e.get("type") == "SubscribeRefused"
    ]
    if reported != refusals:
        problems.append(f"the SubscribeRefused events report waits (delay_ms) of {reported}, not {refusals}")
    return problems


def play(name: str, rig: SubscribingRig, request: pytest.FixtureRequest, refusals: list[int]) -> None:
    scenario: Scenario = SCENARIOS[name]
    properties = request.node.user_properties
    properties.append((junit_properties.MQTT_SCENARIO, name))
    properties.append((junit_properties.MQTT_STATEMENT, scenario.statement))
    properties.append((junit_properties.MQTT_EXPECTED, scenario.title))
    passed = False
    try:
        if rig.deploy_error is not None:
            pytest.fail(
                f"scenario {name}: the board never came up on the scripted broker (the module's "
                f"deploy: {rig.deploy_error}); the wire, after each CONNECT: "
                f"{describe(after_connect(rig.broker))}; broker log: "
                f"{rig.broker.log_path}"
            )
        start = rig.board.capture.next_index
        boots = getattr(rig.board.transport, "boots", None)
        scenario.play(rig.broker, rig.echo_topic, rig.status_topic)
        problems = console_problems(rig.board, start, refusals)
        assert getattr(rig.board.transport, "boots", None) == boots, "the board rebooted during the scenario"
        assert not problems, (
            f"scenario {name} ({scenario.statement}): "
            + "; ".join(problems)
            + f"; console: {rig.board.capture.session_log}; broker log: {rig.broker.log_path}"
        )
        passed = True
    finally:
        CONFORMANCE.record(name, scenario.statement, passed)
        properties.append((junit_properties.MQTT_CONFORMANCE, CONFORMANCE.summary()))


def test_a_topic_one_byte_past_umqtts_subscribe_length_is_subscribed(
    subscribing: SubscribingRig, request: pytest.FixtureRequest
) -> None:
    # The deploy's own connection first: its SUBSCRIBE is the board's first, before any scenario.
    assert len(subscribing.echo_topic) == PAST_ONE_BYTE_TOPIC
    length = packets.remaining_length(2 + 2 + PAST_ONE_BYTE_TOPIC + 1)
    seen = after_connect(subscribing.broker)
    first = seen[0] if seen else None
    assert (
        isinstance(first, Received)
        and first.kind == "SUBSCRIBE"
        and first.raw[1 : 1 + len(length)] == length
        and first.details.get("filters") == [(subscribing.echo_topic, 0)]
    ), (
        f"the board's first SUBSCRIBE, to its echo topic of {PAST_ONE_BYTE_TOPIC} bytes (remaining "
        f"length 128 in two bytes, {length.hex(' ')}), is not what the broker read after each "
        f"CONNECT: {describe(seen)}. umqtt.simple 1.3.4 writes that length in one byte (0x80, "
        f"'more follows'): a malformed SUBSCRIBE; broker log: {subscribing.broker.log_path}"
    )
    play("topic-past-one-byte", subscribing, request, [])


def test_refused_subscribes_wait_longer_each_time_and_start_again_once_granted(
    subscribing: SubscribingRig, request: pytest.FixtureRequest
) -> None:
    play("suback-refused-backoff", subscribing, request, REPORTED_WAITS)
