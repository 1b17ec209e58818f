"""The board's waits after its connection is taken over, against the scripted broker, on a deploy
of its own (docs/broker-scenarios.md, "Taken over"):

- taken-over-backoff: the broker takes each connection as a good broker would (subscribed,
  "online"), then closes it at once, as a broker ends the connection whose client id another
  client took (MQTT-3.1.4-2), three times in a row; then it lets one last (an echo on it), then
  one more short one. The broker times each close to the board's next CONNECT itself: at once
  after a connection that lasted and after the first short one, then waits that grow
  (firmware/connect_retry.py).

Any broker's take-over looks like this to the board, but only mosquitto makes one in the
collision test of tests/hil/test_several_boards.py: amqtt 0.12.1 never ends the connection whose
id was taken back. This scenario shows the board the same thing whichever embedded broker runs.

Settings: ``backoff_initial`` 0.25 s below ``backoff_max`` 0.5 s, so that the waits can grow
(waits of 0.25 and 0.5 s) and a connection lasts, for the firmware, after 1.5 s.

Witnesses: the wire (the scripted broker's own timings), then the console (the waits the firmware
reports choosing, "short_connection"; no traceback, no reboot).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from rig.board import Board
from rig.board.virtual import VirtualBoard
from rig.evidence import junit_properties
from rig.scripted_broker import Scenario, ScriptedBroker, Timing
from rig.scripted_broker.conformance import Conformance
from rig.scripted_broker.scenarios import takeover_catalogue
from rig.serial_events import parse_event
from rig.session import RigSession

LOOP_PERIOD = 0.1
KEEPALIVE = 2
SOCKET_TIMEOUT = 2.0
BACKOFF_INITIAL = 0.25
BACKOFF_MAX = 0.5
TIMING = Timing(
    socket_timeout=SOCKET_TIMEOUT,
    keepalive=KEEPALIVE,
    backoff_initial=BACKOFF_INITIAL,
    loop_period=LOOP_PERIOD,
    backoff_max=BACKOFF_MAX,
)
SCENARIOS = {s.name: s for s in takeover_catalogue(TIMING)}
CONFORMANCE = Conformance(total=len(SCENARIOS))

# The waits the firmware reports choosing ("short_connection" events: in_a_row, delay_ms), in
# order: none after the first short connection, then backoff_initial, doubled; none after the
# row started again.
REPORTED_WAITS = [(2, 250), (3, 500)]


@dataclasses.dataclass
class TakeoverRig:
    board: Board
    broker: ScriptedBroker
    echo_topic: bytes
    status_topic: bytes


@pytest.fixture(scope="module")
def taken_over(rig_session: RigSession) -> Iterator[TakeoverRig]:
    board = rig_session.board()
    transport = board.transport
    if not isinstance(transport, VirtualBoard):
        pytest.skip("the scripted broker runs on the virtual board's link; a USB board reaches it over Wi-Fi")
    if rig_session.settings.tls:
        pytest.skip("the scripted broker speaks plain MQTT; this run is over TLS")
    host = transport.network.host_address if transport.network is not None else "127.0.0.1"
    rig_session.dir.mkdir(parents=True, exist_ok=True)
    broker = ScriptedBroker(host, rig_session.dir / "scripted-broker-takeover.log")
    try:
        config = rig_session.config_for(board, LOOP_PERIOD, "reference", keepalive=KEEPALIVE)
        config = dataclasses.replace(
            config,
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
        try:
            rig_session.run_firmware(config)
        finally:
            strategy.hello_witness = witness
        yield TakeoverRig(board, broker, config.echo_topic.encode(), config.status_topic.encode())
    finally:
        broker.stop()
        rig_session.strategy().restart_before_next_run()


def console_problems(board: Board, start: int) -> list[str]:
    """The console since ``start``: no crash, no reboot, and the waits it reports choosing."""
    lines = board.capture.lines(start)
    events = [e for e in (parse_event(line.text) for line in lines) if e is not None]
    problems = [f"the firmware crashed: {line.text}" for line in lines if line.text.startswith("Traceback")]
    problems += [f"the board rebooted: {e}" for e in events if e.get("ev") == "boot"]
    reported = [(e.get("in_a_row"), e.get("delay_ms")) for e in events if e.get("ev") == "short_connection"]
    if reported != REPORTED_WAITS:
        problems.append(
            f"the short_connection events report (in_a_row, delay_ms) {reported}, not {REPORTED_WAITS}"
        )
    return problems


def test_a_board_taken_over_again_and_again_waits_longer_each_time(
    taken_over: TakeoverRig, request: pytest.FixtureRequest
) -> None:
    name = "taken-over-backoff"
    scenario: Scenario = SCENARIOS[name]
    properties = request.node.user_properties
    properties.append((junit_properties.MQTT_SCENARIO, name))
    properties.append((junit_properties.MQTT_STATEMENT, scenario.statement))
    properties.append((junit_properties.MQTT_EXPECTED, scenario.title))
    passed = False
    try:
        start = taken_over.board.capture.next_index
        boots = getattr(taken_over.board.transport, "boots", None)
        scenario.play(taken_over.broker, taken_over.echo_topic, taken_over.status_topic)
        problems = console_problems(taken_over.board, start)
        assert getattr(taken_over.board.transport, "boots", None) == boots, (
            "the board rebooted during the scenario"
        )
        assert not problems, (
            f"scenario {name} ({scenario.statement}): "
            + "; ".join(problems)
            + f"; console: {taken_over.board.capture.session_log}; broker log: {taken_over.broker.log_path}"
        )
        passed = True
    finally:
        CONFORMANCE.record(name, scenario.statement, passed)
        properties.append((junit_properties.MQTT_CONFORMANCE, CONFORMANCE.summary()))
