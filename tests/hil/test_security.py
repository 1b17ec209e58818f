"""The locked-down broker, judged by a third, unprivileged client and by what the wire carried.

The embedded broker refuses anonymous clients and gives each account its own topics
(``rig.broker.access``). A client that is not the host's nor the board's proves it: it cannot
connect anonymously, a wrong password gets a bad-credentials CONNACK, and with the valid account
of another board (the run's *neighbour*) it can neither read this board's topics nor write into
its echo loop: the message must reach neither the host's subscriber nor the board.
"""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from pathlib import Path

import pytest
import trustme

from rig.board import Board
from rig.broker import Broker, make_broker
from rig.broker.access import HOST, NEIGHBOUR, Login, board_role
from rig.broker.record_log import RecordLog
from rig.broker.records import Connack
from rig.broker.tls import SERVER_NAME, TlsMaterial
from rig.contract import firmware_contract
from rig.deadline import Deadline
from rig.errors import BrokerError, ConnectRejected, WaitTimeout
from rig.host_client import ConnectionRefused, HostClient
from rig.serialio import SerialLog
from rig.session import RigSession
from tests.hil.refusing_broker import RefusingBroker

pytestmark = pytest.mark.hil

# MQTT 5's reason codes, as paho reports both protocols' refusals.
BAD_CREDENTIALS = 134  # "Bad user name or password" (MQTT 3.1.1 return code 4)
NOT_AUTHORIZED = 135  # "Not authorized" (MQTT 3.1.1 return code 5)


def locked(broker: Broker, rig_session: RigSession) -> None:
    contract = firmware_contract(rig_session.settings.firmware)
    # A firmware that cannot log in gets an open broker (rig.session): nothing to refuse.
    contract.require_login("the broker's lock-down (the rig runs it open for this firmware)")
    if broker.access is None:
        pytest.skip(f"the {broker.kind} broker is not the rig's to lock down: its access rules are unknown")


def refusal(broker: Broker, client_id: str, login: Login | None) -> ConnectionRefused:
    client = HostClient(broker.host, broker.port, client_id, login=login)
    with pytest.raises(ConnectionRefused) as refused:
        client.connect(timeout=10)
        client.close()
        pytest.fail(
            f"the {broker.kind} broker admitted {client_id} {'as ' + login.user if login else 'anonymously'}"
        )
    return refused.value


def test_an_anonymous_client_is_refused(broker: Broker, rig_session: RigSession) -> None:
    locked(broker, rig_session)
    refused = refusal(broker, f"rig-anon-{rig_session.run_id}", None)
    assert refused.code == NOT_AUTHORIZED, f"anonymous client refused with {refused.reason} ({refused.code})"


def test_wrong_credentials_get_a_bad_credentials_connack(
    broker: Broker, rig_session: RigSession, board: Board
) -> None:
    locked(broker, rig_session)
    own = broker.login(board_role(board.name))
    assert own is not None
    wrong = Login(own.user, own.password + "-wrong")
    refused = refusal(broker, f"rig-wrong-{rig_session.run_id}", wrong)
    # mosquitto 2.0.11 and amqtt 0.12.1 both answer "not authorized" (5) for a bad password, in
    # MQTT 3.1.1 and (mosquitto) MQTT 5 alike; "bad user name or password" (4) would do as well.
    assert refused.code in (BAD_CREDENTIALS, NOT_AUTHORIZED), refused


def test_another_boards_account_can_neither_read_nor_write_this_boards_topics(
    broker: Broker,
    rig_session: RigSession,
    board: Board,
    mqtt: HostClient,
    serial_log: SerialLog,
    rig_artifacts: Path,
) -> None:
    locked(broker, rig_session)
    timeout = rig_session.settings.timeout
    topic = board.config.echo_topic
    neighbour = HostClient(
        broker.host,
        broker.port,
        f"rig-neighbour-{rig_session.run_id}",
        trace_path=rig_artifacts / "mqtt-neighbour.jsonl",
        login=broker.login(NEIGHBOUR),
    )
    neighbour.connect(timeout)
    try:
        # A broker may grant the subscription and filter what it delivers, or refuse it:
        # either way nothing of this board may arrive.
        with contextlib.suppress(BrokerError):  # a SUBACK failure code: refused outright
            neighbour.subscribe(f"{board.config.topic_prefix}/#", timeout=timeout)
        intruder = f"intruder {uuid.uuid4().hex[:8]}".encode()
        marker = f"marker {uuid.uuid4().hex[:8]}".encode()
        sent_at = mqtt.messages()[-1].t if mqtt.messages() else 0.0
        neighbour.publish(topic, intruder)
        # The host's marker after the intruder: the broker handles one client's packets in order
        # and delivers each subscriber's in order, so once the board echoed the marker, an
        # intruder that got through would have reached the board and the host before it.
        mqtt.publish(topic, marker)
        mqtt.wait_count(topic, marker, 2, timeout, since=sent_at)  # the marker and its echo
        serial_log.expect_event("published", timeout, hex=marker.hex())
    finally:
        neighbour.close()
    got_through = [m.describe() for m in mqtt.messages(payload=intruder)]
    assert not got_through, f"the neighbour's message reached this board's topic: {got_through}"
    received = [e for e in serial_log.events("received") if e.get("hex") == intruder.hex()]
    assert not received, "the board received the neighbour's message on its echo topic"
    leaked = [m.describe() for m in neighbour.messages()]
    assert not leaked, f"the neighbour read this board's topics: {leaked}"


def test_the_host_account_cannot_reach_beyond_this_runs_boards(
    broker: Broker, rig_session: RigSession, mqtt: HostClient, rig_artifacts: Path
) -> None:
    """The host's account is for this run's boards: the neighbour's topics are closed to it."""
    locked(broker, rig_session)
    timeout = rig_session.settings.timeout
    other = broker.access.account(NEIGHBOUR) if broker.access is not None else None
    assert other is not None
    neighbour = HostClient(
        broker.host,
        broker.port,
        other.client_id or f"rig-neighbour-own-{rig_session.run_id}",  # its bound id, if it has one
        trace_path=rig_artifacts / "mqtt-neighbour.jsonl",
        login=other.login,
    )
    neighbour.connect(timeout)
    try:
        own_topic = f"{other.prefixes[0]}/echo"
        neighbour.subscribe(own_topic, timeout=timeout)
        stray, marker = f"stray {uuid.uuid4().hex[:8]}".encode(), f"marker {uuid.uuid4().hex[:8]}".encode()
        mqtt.publish(own_topic, stray)  # the host writing where it has no right to
        neighbour.publish(own_topic, marker)
        neighbour.wait_count(own_topic, marker, 1, timeout)
        assert not neighbour.messages(payload=stray), "the host account wrote into another board's topics"
    finally:
        neighbour.close()
    assert broker.login(HOST) is not None


# -- the firmware at a door it cannot open -------------------------------------------------------

# Short backoff for the tests: 0.2, 0.4, 0.8, 0.8 ... s between attempts.
BACKOFF_INITIAL, BACKOFF_MAX = 0.2, 0.8
# A long outage, refused login after login: some tens of attempts, a firmware that gives up
# after a count of them (or stops growing its waits wrongly) shows. Waits of 5, 10, 20, 20 ... ms
# keep it to a second or two; the broker answers each in milliseconds (TLS: a handshake more).
OUTAGE_BACKOFF_INITIAL, OUTAGE_BACKOFF_MAX = 0.005, 0.02
ATTEMPTS = 48


def test_the_firmware_reports_a_refused_login_and_retries_with_a_backoff(
    broker: Broker,
    rig_session: RigSession,
    board: Board,
    serial_log: SerialLog,
    broker_records: RecordLog,
) -> None:
    """Wrong credentials: the run says so as a config failure (not a timeout), the firmware
    reports each refusal with its CONNACK code and waits longer each time, it never restarts,
    and the broker saw exactly the attempts the board reported: no hammering."""
    locked(broker, rig_session)
    timeout = rig_session.settings.timeout
    mark = broker_records.mark()
    wrong = dataclasses.replace(
        board.config,
        broker_password="wrong-" + uuid.uuid4().hex,
        app={
            **board.config.app,
            "backoff_initial": OUTAGE_BACKOFF_INITIAL,
            "backoff_max": OUTAGE_BACKOFF_MAX,
        },
    )
    boots = len(serial_log.events("boot"))
    try:
        rig_session.run_firmware(wrong)
    except ConnectRejected as rejected:
        message = str(rejected)
    else:
        pytest.fail("the board got in with a wrong password: the broker does not check it")
    assert "refused the board's login" in message and "CONNACK 5" in message, message
    refusals = []
    for n in range(1, ATTEMPTS + 1):
        try:
            refusals.append(serial_log.expect_event("connect_refused", timeout, attempt=n))
        except WaitTimeout as e:
            refused_so_far = [c for c in broker_records.connacks(after=mark) if c.return_code != 0]
            raise AssertionError(
                f"the firmware gave up on a long outage: it stopped trying after {n - 1} refused "
                f"logins (the broker refused {len(refused_so_far)}); a board must keep trying, at its "
                f"longest wait, for someone may fix the broker's accounts:\n{e}"
            ) from e
    assert {r["code"] for r in refusals} == {5}, refusals
    delays = [r["delay_ms"] for r in refusals]
    assert delays == sorted(delays) and delays[0] < delays[-1], f"no backoff: delays {delays} ms"
    assert delays[-1] <= OUTAGE_BACKOFF_MAX * 1000, f"backoff past its cap: {delays} ms"
    assert len(serial_log.events("boot")) == boots + 1, "the firmware restarted instead of retrying"
    # The broker's word: as many refused logins as the board reported, no more. The board tries
    # every few milliseconds: stopped first, so that both counts are final.
    board.interrupt()
    serial_log.expect("KeyboardInterrupt", timeout)
    reported = len(serial_log.events("connect_refused"))
    deadline = Deadline(timeout)
    while True:  # the broker's log is read by polling: until it has as many, or the bound
        refused = [c for c in broker_records.connacks(after=mark) if c.return_code != 0]
        if len(refused) >= reported - 1 or deadline.expired:
            break
        broker_records.next(Connack, deadline.remaining_or(0.2), after=refused[-1] if refused else mark)
    assert reported >= ATTEMPTS and reported - 1 <= len(refused) <= reported + 1, (
        f"the board reported {reported} refused logins, the broker refused {len(refused)}"
    )


# Two outages in one boot: the first refuses 6 times (waits of 10, 20 ... 320 ms, at its cap),
# then the broker accepts the board, then refuses it again.
FIRST_OUTAGE = 6
AFTER_SUCCESS_BACKOFF_INITIAL, AFTER_SUCCESS_BACKOFF_MAX = 0.01, 0.32


def test_the_backoff_starts_again_from_its_first_wait_after_a_success(
    broker: Broker, rig_session: RigSession, board: Board, serial_log: SerialLog
) -> None:
    """A board that waited ever longer through one outage and then got in must not carry those
    waits into the next outage: once accepted, its next refusal waits ``backoff_initial`` again.
    (The other tests refuse the board in one outage only.) A scripted broker of the test's own
    refuses, accepts and refuses again (``tests.hil.refusing_broker``): the rig's brokers cannot
    turn a login down after accepting it."""
    if broker.kind == "external":
        # Worded with rig.skip_policy's expected fragment: a CI run against an external broker
        # must not fail on this skip.
        pytest.skip(
            "an external broker is not the rig's to lock down: the scripted broker that refuses the "
            "login again listens where the rig's own broker does, not on the external broker's host"
        )
    timeout = rig_session.settings.timeout
    initial_ms = round(AFTER_SUCCESS_BACKOFF_INITIAL * 1000)
    fake = RefusingBroker(board.config.broker_host, FIRST_OUTAGE, board.config.contract.hello or b"hello")
    try:
        config = dataclasses.replace(
            board.config,
            broker_port=fake.port,
            tls_ca=None,  # the scripted broker speaks plain MQTT
            tls_server_name=None,
            app={
                **board.config.app,
                "backoff_initial": AFTER_SUCCESS_BACKOFF_INITIAL,
                "backoff_max": AFTER_SUCCESS_BACKOFF_MAX,
            },
        )
        with contextlib.suppress(ConnectRejected):  # the first outage: the rig names the refusal
            rig_session.run_firmware(config)
        again = serial_log.expect_event("connect_refused", timeout + 2, reconnect=True, attempt=1)
    finally:
        fake.close()
    first = [e["delay_ms"] for e in serial_log.events("connect_refused") if not e.get("reconnect")]
    # The broker's word first: it accepted the board once, and then saw it come back.
    accepted = [a for a in fake.attempts if a.accepted]
    assert accepted and fake.refused_after_success(), (
        f"the scripted broker saw no second outage: attempts {fake.attempts}, problems {fake.problems}"
    )
    assert len(first) >= FIRST_OUTAGE - 1 and max(first) > initial_ms, f"no backoff: waits {first} ms"
    assert again["delay_ms"] == initial_ms, (
        f"the backoff did not come down after a success: the broker refused the board "
        f"{FIRST_OUTAGE} times (waits {first} ms), accepted it, then refused it again, and its "
        f"first wait then was {again['delay_ms']} ms, not backoff_initial {initial_ms} ms; "
        f"full log: {serial_log.path}"
    )


def bad_tls_broker(broker: Broker, rig_session: RigSession, tls: TlsMaterial, folder: Path) -> Broker:
    """A second broker of the run's kind, where the board can reach it, with ``tls``."""
    if broker.kind == "external":
        pytest.skip("the rig makes certificates for its own brokers only")
    other = make_broker(broker.kind, folder, host=broker.host, access=rig_session.access_policy(), tls=tls)
    other.start(timeout=rig_session.settings.timeout)
    return other


@pytest.mark.parametrize("wrong", ["another name", "another CA"])
def test_a_certificate_the_board_must_not_trust_fails_the_connection_naming_why(
    wrong: str,
    broker: Broker,
    rig_session: RigSession,
    board: Board,
    serial_log: SerialLog,
    rig_artifacts: Path,
) -> None:
    locked(broker, rig_session)
    trusted = trustme.CA()
    tls = (
        TlsMaterial.generate("not-the-broker.test", ca=trusted)
        if wrong == "another name"
        else TlsMaterial.generate()  # its own CA, not the one the board trusts
    )
    other = bad_tls_broker(broker, rig_session, tls, rig_artifacts / "tls-broker")
    try:
        config = dataclasses.replace(
            board.config,
            broker_port=other.tls_port or 0,
            tls_ca=trusted.cert_pem.bytes().decode(),
            tls_server_name=SERVER_NAME,
            app={**board.config.app, "backoff_initial": BACKOFF_INITIAL, "backoff_max": BACKOFF_MAX},
        )
        try:
            rig_session.run_firmware(config)
        except ConnectRejected as rejected:
            message = str(rejected)
        else:
            pytest.fail(
                f"the board connected to a broker whose certificate is for {wrong}: "
                "it does not check the server's certificate"
            )
        assert "TLS handshake" in message and "tls_ca" in message, message
        cause = "Common Name" if wrong == "another name" else "not correctly signed by the trusted CA"
        assert cause in message, message
        second = serial_log.expect_event("tls_error", rig_session.settings.timeout, attempt=2)
        assert cause in str(second.get("detail")), second
    finally:
        other.stop()
        tls.discard()
