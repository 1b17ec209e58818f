"""The embedded broker locked down: accounts, topic prefixes, the TLS listener, no password on disk.

Both brokers, real processes on loopback, real paho clients (and raw MQTT bytes where the test
judges a packet: a CONNACK over TLS). Every wait is bounded and event-driven: a message that must
NOT arrive is bounded by a marker that would have come after it (``Peer.round_trip``), never by a
sleep.

CONNACK codes: an MQTT 3.1.1 refusal is 5 (not authorized) on both brokers, for an anonymous client
and for a wrong password alike: mosquitto 2.0.11 answers so, and amqtt has no other code for an
auth plugin's no (``rig.broker.amqtt_auth``). paho reports 5 as its MQTT 5 reason code 135.
"""

from __future__ import annotations

import json
import socket
import ssl
import stat
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import trustme
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from rig.broker import Broker, ManagedBroker, make_broker
from rig.broker.access import (
    HOST,
    NEIGHBOUR,
    NEIGHBOUR_BOARD,
    AccessPolicy,
    Login,
    board_role,
    topic_prefix,
)
from rig.broker.amqtt import amqtt_available
from rig.broker.amqtt_access import (
    BadPasswordFile,
    PasswordHash,
    read_client_ids,
    read_password_file,
    topic_acl,
)
from rig.broker.amqtt_runner import DEBUG_ENV
from rig.broker.logfile import LogFile
from rig.broker.mosquitto import find_mosquitto
from rig.broker.mosquitto_access import client_id_bindings_text, password_line
from rig.broker.record_source import RecordFollower
from rig.broker.records import BrokerRecord, Connack, Connect
from rig.broker.tls import TlsMaterial
from rig.deadline import Deadline
from rig.errors import ConfigError
from rig.host_client import ConnectionRefused, HostClient

WAIT_S = 5.0
KINDS = ["mosquitto", "amqtt"]
RUN = "r1"
BOARDS = {"b1": topic_prefix("b1", RUN), "b2": topic_prefix("b2", RUN)}
B1 = BOARDS["b1"]
NEIGHBOUR_PREFIX = topic_prefix(NEIGHBOUR_BOARD, RUN)
# MQTT 3.1.1's CONNACK 5 ("not authorized") as paho names it: its MQTT 5 reason code.
NOT_AUTHORIZED = 135
# The CONNACK a wrong password gets, per broker (MQTT 3.1.1 has 4, "bad user name or password",
# but neither broker sends it for a login that does not match).
BAD_LOGIN = {"mosquitto": NOT_AUTHORIZED, "amqtt": NOT_AUTHORIZED}


def skip_unless_available(kind: str) -> None:
    if kind == "mosquitto" and find_mosquitto() is None:
        pytest.skip("mosquitto is not installed")
    if kind == "amqtt" and not amqtt_available():
        pytest.skip("amqtt is not installed")


@pytest.fixture(scope="module")
def policy() -> AccessPolicy:
    return AccessPolicy.generate(BOARDS, NEIGHBOUR_PREFIX)


@pytest.fixture(scope="module")
def tls() -> Iterator[TlsMaterial]:
    material = TlsMaterial.generate()
    yield material
    material.discard()


@pytest.fixture(params=KINDS)
def locked(
    request: pytest.FixtureRequest, tmp_path: Path, policy: AccessPolicy, tls: TlsMaterial
) -> Iterator[Broker]:
    """A broker of the kind given, enforcing ``policy``, with a TLS listener."""
    kind: str = request.param
    skip_unless_available(kind)
    with make_broker(kind, tmp_path / kind, access=policy, tls=tls) as running:
        yield running


# -- clients ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool


class Peer:
    """A paho-mqtt 2.x client (MQTT 3.1.1) whose callbacks feed what the test waits on.

    Lifecycle: ``connect()`` (returns the CONNACK's session-present flag, fails the test on a
    refusal or no CONNACK), ``subscribe``/``publish``, ``close()`` (clean DISCONNECT)."""

    def __init__(self, broker: Broker, client_id: str, login: Login | None, *, clean_session: bool = True):
        self.broker = broker
        self.client_id = client_id
        self.who = login.user if login is not None else "anonymous"
        self.mqtt = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean_session)
        if login is not None:
            self.mqtt.username_pw_set(login.user, login.password)
        self._cond = threading.Condition()
        self._connack: tuple[ReasonCode, bool] | None = None
        self._subacks: dict[int, list[ReasonCode]] = {}
        self._disconnects = 0
        self.received: list[Received] = []
        self.mqtt.on_connect = self._on_connect
        self.mqtt.on_subscribe = self._on_subscribe
        self.mqtt.on_message = self._on_message
        self.mqtt.on_disconnect = self._on_disconnect

    def _on_connect(
        self, _c: object, _u: object, flags: mqtt.ConnectFlags, rc: ReasonCode, _p: object
    ) -> None:
        with self._cond:
            self._connack = (rc, bool(flags.session_present))
            self._cond.notify_all()

    def _on_subscribe(self, _c: object, _u: object, mid: int, rcs: list[ReasonCode], _p: object) -> None:
        with self._cond:
            self._subacks[mid] = rcs
            self._cond.notify_all()

    def _on_message(self, _c: object, _u: object, message: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.received.append(Received(message.topic, bytes(message.payload), bool(message.retain)))
            self._cond.notify_all()

    def _on_disconnect(self, *_: object) -> None:
        with self._cond:
            self._disconnects += 1
            self._cond.notify_all()

    @property
    def disconnects(self) -> int:
        """How often the broker ended this client's connection (or ``close()`` did)."""
        with self._cond:
            return self._disconnects

    def _wait(self, ready: Callable[[], bool], awaited: str) -> None:
        with self._cond:
            if not self._cond.wait_for(ready, WAIT_S):
                seen = [f"{m.topic} {m.payload!r}" for m in self.received[-10:]]
                pytest.fail(
                    f"{self.client_id} ({self.who}): {awaited} within {WAIT_S}s; last received: {seen}"
                )

    def connack(self) -> tuple[ReasonCode, bool]:
        """Connect and return the CONNACK: its code and its session-present flag.

        paho's network thread starts only after an accepted CONNACK: after a refusal it would
        sleep out its reconnect delay (1 s) before it noticed ``close()``."""
        self.mqtt.connect(self.broker.host, self.broker.port, keepalive=30)
        deadline = Deadline(WAIT_S)
        while self._connack is None and not deadline.expired:
            # Reads the socket until the CONNACK came (callbacks run here), at most 50 ms a call.
            if self.mqtt.loop(timeout=deadline.remaining_or(0.05)) != mqtt.MQTT_ERR_SUCCESS:
                break
        if self._connack is None:
            pytest.fail(f"{self.client_id} ({self.who}): no CONNACK from {self.broker.kind} within {WAIT_S}s")
        if not self._connack[0].is_failure:
            self.mqtt.loop_start()
        return self._connack

    def connect(self) -> bool:
        """Connect; the session-present flag. Fails the test on a refusal."""
        rc, present = self.connack()
        if rc.is_failure:
            self.close()
            pytest.fail(f"{self.client_id} ({self.who}) refused by {self.broker.kind}: {rc} ({rc.value})")
        return present

    def subscribe(self, topic: str) -> list[ReasonCode]:
        """Subscribe at QoS 1; the SUBACK's codes (a failure code when the broker denied it)."""
        mid = self.subscribe_nowait(topic)
        self.wait_subacks([mid])
        return self._subacks[mid]

    def subscribe_nowait(self, topic: str) -> int:
        """Send a SUBSCRIBE (QoS 1) and return its message id at once."""
        result, mid = self.mqtt.subscribe(topic, qos=1)
        assert result == mqtt.MQTT_ERR_SUCCESS and mid is not None
        return mid

    def wait_subacks(self, mids: list[int]) -> None:
        self._wait(lambda: all(mid in self._subacks for mid in mids), f"no SUBACK for all of {len(mids)}")

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """Publish at QoS 1 and wait for its PUBACK: the broker has handled it."""
        info = self.mqtt.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(WAIT_S)
        assert info.is_published(), f"{self.client_id}: no PUBACK for {topic!r} within {WAIT_S}s"

    def wait_for(self, topic: str, payload: bytes) -> None:
        self._wait(
            lambda: any(m.topic == topic and m.payload == payload for m in self.received),
            f"{payload!r} on {topic!r} did not arrive",
        )

    def under(self, prefix: str) -> list[Received]:
        with self._cond:
            return [m for m in self.received if m.topic == prefix or m.topic.startswith(prefix + "/")]

    def round_trip(self, topic: str) -> None:
        """Publish to ``topic`` (which this client is subscribed to) and wait for it to come back:
        whatever the broker had queued for this client before came before it."""
        marker = f"marker {time.monotonic_ns()}".encode()
        self.publish(topic, marker)
        self.wait_for(topic, marker)

    def close(self) -> None:
        self.mqtt.disconnect()
        self.mqtt.loop_stop()  # a no-op when the thread never started


def _peer(broker: Broker, policy: AccessPolicy, role: str, client_id: str, **kwargs: bool) -> Peer:
    peer = Peer(broker, client_id, policy.login(role), **kwargs)
    peer.connect()
    return peer


def _refused(
    broker: Broker, client_id: str, login: Login | None, *, clean_session: bool = True
) -> ReasonCode:
    """The CONNACK code of a CONNECT the broker must refuse."""
    peer = Peer(broker, client_id, login, clean_session=clean_session)
    rc, _ = peer.connack()
    peer.close()
    assert rc.is_failure, f"{broker.kind} accepted {client_id} ({peer.who}), which it must refuse"
    return rc


def _wait_records(follower: RecordFollower, found: Callable[[list[BrokerRecord]], bool], what: str) -> None:
    seen: list[BrokerRecord] = []
    deadline = Deadline(WAIT_S)
    while not found(seen):
        if deadline.expired:
            shown = "\n  ".join(r.describe() for r in seen[-10:])
            pytest.fail(f"no record of {what} in {follower.path}; last records:\n  {shown}")
        seen += follower.read_new()
        time.sleep(deadline.remaining_or(0.02))  # a file gives no event to wait on


# -- raw MQTT, to judge a CONNACK byte by byte --------------------------------------------------------


def _string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("!H", len(data)) + data


def _connect_packet(client_id: str, login: Login | None) -> bytes:
    flags = 0x02 | (0xC0 if login is not None else 0)  # clean session, user name and password
    body = _string("MQTT") + bytes([4, flags]) + struct.pack("!H", 30) + _string(client_id)
    if login is not None:
        body += _string(login.user) + _string(login.password)
    assert len(body) < 128  # one-byte remaining length
    return bytes([0x10, len(body)]) + body


def _connack_over(sock: socket.socket | ssl.SSLSocket, client_id: str, login: Login | None) -> bytes:
    sock.sendall(_connect_packet(client_id, login))
    data = b""
    while len(data) < 4:
        chunk = sock.recv(4 - len(data))
        assert chunk, f"the broker closed the connection after {data!r} instead of sending a CONNACK"
        data += chunk
    return data


def _tls_socket(broker: Broker, cadata: str, server_name: str) -> ssl.SSLSocket:
    assert broker.tls_port is not None
    context = ssl.create_default_context(cadata=cadata)
    raw = socket.create_connection((broker.host, broker.tls_port), timeout=WAIT_S)
    try:
        return context.wrap_socket(raw, server_hostname=server_name)
    except BaseException:
        raw.close()
        raise


# -- accounts -----------------------------------------------------------------------------------------


def test_an_account_connects_and_anonymous_is_refused(locked: Broker, policy: AccessPolicy) -> None:
    host = HostClient(locked.host, locked.port, "acc-host", login=policy.login(HOST))
    host.connect(WAIT_S)
    host.close()
    follower = locked.record_follower()
    assert follower is not None
    # The rig's own client says why it was refused.
    anonymous = HostClient(locked.host, locked.port, "acc-anonymous")
    with pytest.raises(ConnectionRefused) as caught:
        anonymous.connect(WAIT_S)
    refused = caught.value
    assert refused.code == NOT_AUTHORIZED, (
        f"{locked.kind} refused an anonymous client with {refused.reason} ({refused.code}), "
        f"expected CONNACK 5, not authorized ({NOT_AUTHORIZED})"
    )
    # The refusal is on record with its code; mosquitto names the client by its address (it
    # refuses before it takes the client id), amqtt's records by its client id.
    named = {"mosquitto": locked.host, "amqtt": "acc-anonymous"}[locked.kind]
    _wait_records(
        follower,
        lambda seen: any(isinstance(r, Connack) and r.return_code == 5 and r.client == named for r in seen),
        f"the CONNACK 5 to {named}",
    )


@pytest.mark.parametrize("who", ["wrong password", "unknown user"])
def test_a_wrong_login_is_refused(locked: Broker, policy: AccessPolicy, who: str) -> None:
    real = policy.login(board_role("b1"))
    login = (
        Login(real.user, real.password[::-1]) if who == "wrong password" else Login("stranger", real.password)
    )
    refused = _refused(locked, "acc-wrong", login)
    assert refused.value == BAD_LOGIN[locked.kind], (
        f"{locked.kind} refused a client with a {who} with {refused} ({refused.value}), "
        f"expected {BAD_LOGIN[locked.kind]}"
    )


def test_a_board_session_survives_disconnect_and_reconnect(locked: Broker, policy: AccessPolicy) -> None:
    """clean_session=0: the broker keeps the session of a board that said DISCONNECT (amqtt
    would drop it within a second had its auth plugin marked it anonymous)."""
    board = _peer(locked, policy, board_role("b1"), "sess-b1", clean_session=False)
    board.subscribe(f"{B1}/#")
    board.close()
    if locked.kind == "amqtt":
        # amqtt's session monitor deletes anonymous and clean disconnected sessions once a second
        # (the runner logs each at INFO): a clean client leaving gives it one to delete, so
        # that line says the monitor has looked at the board's session too.
        mark = locked.log_mark()
        _peer(locked, policy, HOST, "sess-clean").close()
        _wait_log(locked, mark, "session of 'sess-clean' deleted")
    again = Peer(locked, "sess-b1", policy.login(board_role("b1")), clean_session=False)
    assert again.connect(), f"{locked.kind}: CONNACK session present = 0 for the board's resumed session"
    try:
        host = _peer(locked, policy, HOST, "sess-host")
        host.publish(f"{B1}/echo", b"still subscribed")
        again.wait_for(f"{B1}/echo", b"still subscribed")
        host.close()
    finally:
        again.close()


def _wait_log(broker: Broker, since: int, text: str) -> None:
    assert broker.log_path is not None
    deadline = Deadline(WAIT_S)
    log = LogFile(broker.log_path)
    while not any(text in line for line in log.lines(since)):
        if deadline.expired:
            pytest.fail(f"no {text!r} in {broker.log_path} within {WAIT_S}s; tail: {log.tail(5)}")
        time.sleep(deadline.remaining_or(0.05))  # a file gives no event to wait on


# -- topics -------------------------------------------------------------------------------------------


def test_a_board_uses_its_prefix_and_the_host_every_prefix(locked: Broker, policy: AccessPolicy) -> None:
    boards = {name: _peer(locked, policy, board_role(name), f"use-{name}") for name in BOARDS}
    host = _peer(locked, policy, HOST, "use-host")
    try:
        for name, prefix in BOARDS.items():
            board = boards[name]
            codes = board.subscribe(f"{prefix}/#")
            assert not any(c.is_failure for c in codes), (
                f"{locked.kind} denied {name} its own prefix: {codes}"
            )
            codes = host.subscribe(f"{prefix}/#")
            assert not any(c.is_failure for c in codes), f"{locked.kind} denied the host {prefix}/#: {codes}"
            board.publish(f"{prefix}/status", f"{name} up".encode())
            board.wait_for(f"{prefix}/status", f"{name} up".encode())
            host.wait_for(f"{prefix}/status", f"{name} up".encode())
            host.publish(f"{prefix}/echo", f"to {name}".encode())
            board.wait_for(f"{prefix}/echo", f"to {name}".encode())
    finally:
        host.close()
        for board in boards.values():
            board.close()


def test_messages_reach_every_subscriber_while_others_subscribe(locked: Broker, policy: AccessPolicy) -> None:
    """Routing a message with topic checks yields to other clients mid-way through the
    subscriptions (amqtt awaits its topic plugins there): a SUBSCRIBE handled meanwhile must not
    cost a subscriber further down the message. amqtt 0.12.1 raised "dictionary changed size
    during iteration" there and dropped the rest of the delivery."""
    count = 150
    board = _peer(locked, policy, board_role("b1"), "churn-b1")
    first = _peer(locked, policy, HOST, "churn-first")
    second = _peer(locked, policy, HOST, "churn-second")
    churner = _peer(locked, policy, board_role("b1"), "churn-churner")
    try:
        first.subscribe(f"{B1}/#")
        second.subscribe(f"{B1}/data")  # a later filter: reached after the yield for the first
        mids = []
        for i in range(count):
            # Without waiting: the broker gets SUBSCRIBEs and PUBLISHes at once.
            mids.append(churner.subscribe_nowait(f"{B1}/churn/{i}"))
            board.mqtt.publish(f"{B1}/data", str(i).encode(), qos=0)
        churner.wait_subacks(mids)
        board.publish(f"{B1}/data", b"end")
        first.wait_for(f"{B1}/data", b"end")
        second.round_trip(f"{B1}/data")
        got = {m.payload for m in second.under(f"{B1}/data")}
        missing = [i for i in range(count) if str(i).encode() not in got]
        assert not missing, (
            f"{locked.kind} never delivered {len(missing)} of {count} messages to the second subscriber"
        )
    finally:
        for peer in (churner, second, first, board):
            peer.close()


def test_the_neighbour_receives_nothing_of_a_board(locked: Broker, policy: AccessPolicy) -> None:
    host = _peer(locked, policy, HOST, "nb-host")
    board = _peer(locked, policy, board_role("b1"), "nb-b1")
    # Someone subscribed to the board's prefix, and a retained message there, before the
    # neighbour connects: amqtt 0.12.1 handed a connecting client the retained messages of every
    # topic anyone subscribed to (the runner now sends them only on SUBSCRIBE; the ACL check
    # there is what this guards).
    host.subscribe(f"{B1}/#")
    board.publish(f"{B1}/status", b"retained status", retain=True)
    neighbour = _peer(locked, policy, NEIGHBOUR, "nb-neighbour")
    try:
        codes = {topic: neighbour.subscribe(topic) for topic in (f"{B1}/#", "#", f"{NEIGHBOUR_PREFIX}/#")}
        assert not any(c.is_failure for c in codes[f"{NEIGHBOUR_PREFIX}/#"]), f"own prefix denied: {codes}"
        board.publish(f"{B1}/data", b"for the board's readers only")
        board.publish(f"{B1}/marker", b"after the data")
        host.wait_for(f"{B1}/marker", b"after the data")
        neighbour.round_trip(f"{NEIGHBOUR_PREFIX}/marker")
        leaked = neighbour.under(B1)
        assert not leaked, (
            f"{locked.kind} delivered the board's messages to the neighbour account "
            f"(SUBACK codes {codes}): {leaked}"
        )
    finally:
        for peer in (neighbour, board, host):
            peer.close()


def test_the_neighbour_cannot_publish_to_a_board(locked: Broker, policy: AccessPolicy) -> None:
    board = _peer(locked, policy, board_role("b1"), "np-b1")
    neighbour = _peer(locked, policy, NEIGHBOUR, "np-neighbour")
    try:
        board.subscribe(f"{B1}/#")
        neighbour.subscribe(f"{NEIGHBOUR_PREFIX}/#")
        neighbour.publish(f"{B1}/cmd", b"forged command")
        neighbour.publish(f"{B1}/status", b"forged retained status", retain=True)
        # The broker handles one client's packets in order: the neighbour's marker came back, so
        # its forged messages were dealt with; the board's own round trip then brings anything
        # the broker had queued for it.
        neighbour.round_trip(f"{NEIGHBOUR_PREFIX}/marker")
        board.round_trip(f"{B1}/marker")
        late = _peer(locked, policy, board_role("b1"), "np-b1-late")
        late.subscribe(f"{B1}/#")
        late.round_trip(f"{B1}/marker")
        late.close()
        forged = [m for m in board.under(B1) + late.under(B1) if m.payload.startswith(b"forged")]
        assert not forged, (
            f"{locked.kind} delivered the neighbour's publishes into the board's prefix: {forged}"
        )
    finally:
        neighbour.close()
        board.close()


def test_a_session_resumed_by_the_neighbour_gets_nothing_of_the_board(
    locked: Broker, policy: AccessPolicy
) -> None:
    """With a policy that binds no client id (``policy``), the neighbour may resume the board's
    persistent session. It must get neither what was queued for it nor what its subscriptions
    match from then on: the topic ACL holds even where the binding is absent."""
    board = _peer(locked, policy, board_role("b1"), "hijack-b1", clean_session=False)
    board.subscribe(f"{B1}/#")
    board.close()
    host = _peer(locked, policy, HOST, "hijack-host")
    try:
        host.subscribe(f"{B1}/#")
        host.publish(f"{B1}/data", b"queued for the board")
        host.wait_for(f"{B1}/data", b"queued for the board")
        thief = Peer(locked, "hijack-b1", policy.login(NEIGHBOUR), clean_session=False)
        thief.connect()
        try:
            thief.subscribe(f"{NEIGHBOUR_PREFIX}/#")
            host.publish(f"{B1}/data", b"live for the board")
            host.wait_for(f"{B1}/data", b"live for the board")
            thief.round_trip(f"{NEIGHBOUR_PREFIX}/marker")
            leaked = thief.under(B1)
            assert not leaked, (
                f"{locked.kind} gave the board's messages to the neighbour on its session: {leaked}"
            )
        finally:
            thief.close()
    finally:
        host.close()


@pytest.mark.parametrize("clean_session", [True, False])
def test_a_refused_connect_leaves_the_session_of_its_client_id_alone(
    locked: Broker, policy: AccessPolicy, clean_session: bool
) -> None:
    """A CONNECT without a valid login, with a connected board's client id, must change nothing:
    the board stays connected and subscribed."""
    board = _peer(locked, policy, board_role("b1"), "refused-b1", clean_session=False)
    host = _peer(locked, policy, HOST, "refused-host")
    try:
        board.subscribe(f"{B1}/#")
        rc = _refused(locked, "refused-b1", None, clean_session=clean_session)
        assert rc.value == NOT_AUTHORIZED, f"{locked.kind} answered the intruder {rc} ({rc.value})"
        host.publish(f"{B1}/echo", b"after the intruder")
        board.wait_for(f"{B1}/echo", b"after the intruder")
        assert board.disconnects == 0, f"{locked.kind} closed the board's connection for a refused CONNECT"
    finally:
        host.close()
        board.close()


# -- client ids bound to accounts ---------------------------------------------------------------------

# The client ids a run's testbed binds (``Naming.client_id``): each board its own, the neighbour too.
BOUND_IDS = {"b1": "rig-b1-r1", "b2": "rig-b2-r1", NEIGHBOUR_BOARD: "rig-neighbour-r1"}


@pytest.fixture(scope="module")
def bound_policy() -> AccessPolicy:
    return AccessPolicy.generate(BOARDS, NEIGHBOUR_PREFIX, client_ids=BOUND_IDS)


@pytest.fixture(params=KINDS)
def bound(request: pytest.FixtureRequest, tmp_path: Path, bound_policy: AccessPolicy) -> Iterator[Broker]:
    """A broker of the kind given, enforcing ``bound_policy``: the boards' accounts bound to their ids."""
    kind: str = request.param
    skip_unless_available(kind)
    with make_broker(kind, tmp_path / kind, access=bound_policy) as running:
        yield running


@pytest.mark.integration  # a real broker each
def test_each_account_connects_with_its_own_client_id(bound: Broker, bound_policy: AccessPolicy) -> None:
    """The boards and the neighbour with their bound ids, the host with any id of its own."""
    host = _peer(bound, bound_policy, HOST, "rig-host-r1-test_own_ids")
    peers = [host]
    try:
        for board in ("b1", "b2"):
            peers.append(_peer(bound, bound_policy, board_role(board), BOUND_IDS[board]))
        peers.append(_peer(bound, bound_policy, NEIGHBOUR, BOUND_IDS[NEIGHBOUR_BOARD]))
        b1 = peers[1]
        b1.subscribe(f"{B1}/#")
        host.subscribe(f"{B1}/#")
        host.publish(f"{B1}/echo", b"to the board")
        b1.wait_for(f"{B1}/echo", b"to the board")
        b1.publish(f"{B1}/status", b"from the board")
        host.wait_for(f"{B1}/status", b"from the board")
    finally:
        for peer in reversed(peers):
            peer.close()


@pytest.mark.integration  # a real broker each
@pytest.mark.parametrize("thief", [board_role("b1"), NEIGHBOUR])
@pytest.mark.parametrize("clean_session", [True, False])
def test_a_login_with_another_boards_client_id_is_refused_and_that_board_keeps_its_session(
    bound: Broker, bound_policy: AccessPolicy, thief: str, clean_session: bool
) -> None:
    """Board b1's login (or the neighbour's) with b2's client id: CONNACK 5, and b2 stays
    connected, subscribed, and finds its session when it comes back. Before the binding, the
    broker handed b2's session to the thief and closed b2's connection."""
    victim = _peer(bound, bound_policy, board_role("b2"), BOUND_IDS["b2"], clean_session=False)
    host = _peer(bound, bound_policy, HOST, "rig-host-r1-thief")
    b2 = BOARDS["b2"]
    try:
        victim.subscribe(f"{b2}/#")
        rc = _refused(bound, BOUND_IDS["b2"], bound_policy.login(thief), clean_session=clean_session)
        assert rc.value == NOT_AUTHORIZED, (
            f"{bound.kind} answered {thief}'s login with b2's client id with {rc} ({rc.value}), "
            f"expected CONNACK 5, not authorized ({NOT_AUTHORIZED})"
        )
        host.publish(f"{b2}/echo", b"after the thief")
        victim.wait_for(f"{b2}/echo", b"after the thief")
        assert victim.disconnects == 0, f"{bound.kind} closed b2's connection for {thief}'s refused CONNECT"
        victim.close()
        back = Peer(bound, BOUND_IDS["b2"], bound_policy.login(board_role("b2")), clean_session=False)
        try:
            assert back.connect(), f"{bound.kind} lost b2's session to {thief}'s refused CONNECT"
        finally:
            back.close()
    finally:
        host.close()
        victim.close()


@pytest.mark.integration  # a real broker each
@pytest.mark.parametrize("client_id", ["rig-b1-r1-2", "rig-b1", "hijack-host", ""])
def test_a_bound_login_with_any_other_client_id_is_refused(
    bound: Broker, bound_policy: AccessPolicy, client_id: str
) -> None:
    """Not only another board's id: a longer or shorter id, a host's, none at all (the broker
    would make one up). The binding is exact."""
    rc = _refused(bound, client_id, bound_policy.login(board_role("b1")))
    assert rc.value == NOT_AUTHORIZED, f"{bound.kind} answered {client_id!r} with {rc} ({rc.value})"


@pytest.mark.integration  # a real broker each
def test_no_client_may_rewrite_mosquittos_bindings(tmp_path: Path, bound_policy: AccessPolicy) -> None:
    """mosquitto's dynamic security plugin takes commands on ``$CONTROL/dynamic-security/v1``.
    The host's account, the widest, sends one deleting b1's binding; b1's login with b2's id
    must still be refused (the ACL file grants no one that topic)."""
    skip_unless_available("mosquitto")
    with make_broker("mosquitto", tmp_path / "mosquitto", access=bound_policy) as running:
        host = _peer(running, bound_policy, HOST, "rig-host-r1-control")
        try:
            host.subscribe(f"{B1}/#")
            user = bound_policy.login(board_role("b1")).user
            command = f'{{"commands": [{{"command": "deleteClient", "username": "{user}"}}]}}'
            host.publish("$CONTROL/dynamic-security/v1", command.encode())
            host.round_trip(f"{B1}/marker")  # the command, if taken, was handled before the marker
        finally:
            host.close()
        rc = _refused(running, BOUND_IDS["b2"], bound_policy.login(board_role("b1")))
        assert rc.value == NOT_AUTHORIZED


def test_client_ids_bind_only_the_boards_of_the_policy() -> None:
    policy = AccessPolicy.generate(BOARDS, NEIGHBOUR_PREFIX, client_ids=BOUND_IDS)
    assert policy.account(board_role("b1")).client_id == "rig-b1-r1"
    assert policy.account(HOST).client_id is None, "the host's clients take a new id per test"
    assert policy.bound_client_ids() == {
        policy.login(board_role("b1")).user: "rig-b1-r1",
        policy.login(board_role("b2")).user: "rig-b2-r1",
        policy.login(NEIGHBOUR).user: "rig-neighbour-r1",
    }
    with pytest.raises(ConfigError, match="b3: is not a board"):
        AccessPolicy.generate(BOARDS, NEIGHBOUR_PREFIX, client_ids={"b3": "rig-b3"})
    with pytest.raises(ConfigError, match="rig-x: is given to two boards"):
        AccessPolicy.generate(BOARDS, NEIGHBOUR_PREFIX, client_ids={"b1": "rig-x", "b2": "rig-x"})


def test_mosquittos_binding_file_holds_user_and_client_id_only(bound_policy: AccessPolicy) -> None:
    document = json.loads(client_id_bindings_text(bound_policy))
    assert {(c["username"], c["clientid"]) for c in document["clients"]} == set(
        bound_policy.bound_client_ids().items()
    )
    assert all(set(c) == {"username", "clientid"} for c in document["clients"]), "no password, no role"
    # true would make the plugin grant every topic to every user, over the ACL file.
    assert not any(document["defaultACLAccess"].values())


def test_a_bad_client_id_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "amqtt-client-ids.json"
    path.write_text('["board-b1"]\n')
    with pytest.raises(BadPasswordFile, match=str(path)):
        read_client_ids(path)


# -- without a policy ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_an_open_broker_admits_anonymous_clients_to_every_topic(kind: str, tmp_path: Path) -> None:
    skip_unless_available(kind)
    with make_broker(kind, tmp_path / kind) as running:
        anonymous = Peer(running, "open-anon", None)
        anonymous.connect()
        any_login = Peer(running, "open-login", Login("whoever", "whatever"))
        any_login.connect()
        try:
            for peer in (anonymous, any_login):
                codes = peer.subscribe("#")
                assert not any(c.is_failure for c in codes), f"{kind} without a policy denied '#': {codes}"
            anonymous.publish("anywhere/at/all", b"open")
            any_login.publish(f"{B1}/status", b"open too")
            for peer in (anonymous, any_login):
                peer.wait_for("anywhere/at/all", b"open")
                peer.wait_for(f"{B1}/status", b"open too")
        finally:
            any_login.close()
            anonymous.close()


# -- TLS ----------------------------------------------------------------------------------------------


def test_the_tls_listener_proves_the_run_certificate(
    locked: Broker, policy: AccessPolicy, tls: TlsMaterial
) -> None:
    with _tls_socket(locked, tls.ca_pem, tls.server_name) as sock:
        assert _connack_over(sock, "tls-host", policy.login(HOST)) == b"\x20\x02\x00\x00", (
            f"{locked.kind}: the host account was not accepted over TLS"
        )
    with _tls_socket(locked, tls.ca_pem, tls.server_name) as sock:
        assert _connack_over(sock, "tls-anonymous", None) == b"\x20\x02\x00\x05", (
            f"{locked.kind}: an anonymous client was not refused with CONNACK 5 over TLS"
        )
    with pytest.raises(ssl.SSLCertVerificationError, match=r"[Hh]ostname mismatch"):
        _tls_socket(locked, tls.ca_pem, "another-broker.test").close()
    other_ca = trustme.CA().cert_pem.bytes().decode()
    with pytest.raises(ssl.SSLCertVerificationError, match=r"unable to get local issuer"):
        _tls_socket(locked, other_ca, tls.server_name).close()


# -- secrets --------------------------------------------------------------------------------------


# A piece of a secret this long found in a file is a leak, not chance: 8 random characters of a
# password (48 bits) never occur by accident in a few megabytes of log.
_PIECE = 8


def _leak_forms(secret: str) -> dict[str, bytes]:
    """What a file holding ``secret`` or a piece of it may show: the text, its bytes in hex (a
    packet dump), spaced hex (websockets' frame log, which shows a frame's first 16 and last 8
    bytes: a CONNECT's password tail)."""
    raw = secret.encode()
    pieces = {"whole": raw} | {
        f"bytes {i}..{i + _PIECE}": raw[i : i + _PIECE] for i in range(len(raw) - _PIECE + 1)
    }
    forms = {}
    for where, piece in pieces.items():
        forms[f"{where}, plain"] = piece
        forms[f"{where}, hex"] = piece.hex().encode()
        forms[f"{where}, spaced hex"] = " ".join(f"{b:02x}" for b in piece).encode()
    return forms


@pytest.fixture(params=KINDS)
def locked_at_debug(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    policy: AccessPolicy,
    tls: TlsMaterial,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Broker]:
    """As ``locked``, amqtt with its DEBUG log on: every packet logged, the CONNECT's too."""
    kind: str = request.param
    skip_unless_available(kind)
    monkeypatch.setenv(DEBUG_ENV, "1")  # the broker child inherits it; mosquitto ignores it
    with make_broker(kind, tmp_path / kind, access=policy, tls=tls) as running:
        yield running


def test_the_workdir_never_holds_a_password(
    locked_at_debug: Broker, policy: AccessPolicy, tls: TlsMaterial
) -> None:
    locked = locked_at_debug
    for account in policy.accounts:
        peer = _peer(locked, policy, account.role, f"secret-{account.login.user}")
        peer.subscribe(f"{account.prefixes[0]}/#")
        peer.round_trip(f"{account.prefixes[0]}/hello")
        peer.close()
        # Over the WebSocket listener too: its library logs frames in hex at DEBUG.
        assert locked.ws_port is not None
        ws_id = f"secret-ws-{account.login.user}"
        ws = HostClient(locked.host, locked.ws_port, ws_id, transport="websockets", login=account.login)
        ws.connect(WAIT_S)
        ws.close()
        login = account.login
        _refused(locked, f"secret-wrong-{login.user}", Login(login.user, login.password[:-1]))
    locked.stop()  # every log and record flushed
    assert isinstance(locked, ManagedBroker)
    files = [path for path in locked.workdir.rglob("*") if path.is_file()]
    assert any(path.name.endswith(".log") for path in files)
    found = []
    for path in files:
        data = path.read_bytes()
        for name, value in {**policy.secrets(), **tls.secrets()}.items():
            found += [
                f"{name} ({form}) in {path}" for form, text in _leak_forms(value).items() if text in data
            ]
    assert not found, "secrets in the broker's workdir:\n  " + "\n  ".join(found)
    for path in files:
        if "passwd" in path.name:
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, f"{path} is readable by others"
    if locked.kind == "amqtt":
        # Else the check above proves nothing of the packet log: it must have shown the CONNECTs.
        assert locked.log_path is not None
        # rig.broker.amqtt_plugin's mask (not imported: that module needs amqtt in this process).
        masked = [line for line in LogFile(locked.log_path).lines() if "password=***)" in line]
        assert masked, f"{DEBUG_ENV}=1, yet no CONNECT with its password masked in {locked.log_path}"


@pytest.mark.integration  # starts a broker without a fixture saying so
@pytest.mark.parametrize("debug", ["", "1"])
def test_amqtt_logs_at_info_unless_asked_for_debug(
    tmp_path: Path, policy: AccessPolicy, monkeypatch: pytest.MonkeyPatch, debug: str
) -> None:
    """At DEBUG amqtt logs every packet and routing step (1.3 MB in 8 minutes of rig up); the
    rig's evidence is the records, so the log is at INFO unless RIG_AMQTT_DEBUG=1."""
    skip_unless_available("amqtt")
    monkeypatch.setenv(DEBUG_ENV, debug)
    with make_broker("amqtt", tmp_path / "amqtt", access=policy) as broker:
        follower = broker.record_follower()
        assert follower is not None
        peer = _peer(broker, policy, HOST, "level-host")
        peer.subscribe(f"{B1}/#")
        peer.round_trip(f"{B1}/echo")
        peer.close()
        # The records are written at either level: they, not the log, are the rig's evidence.
        _wait_records(
            follower,
            lambda seen: any(isinstance(r, Connect) and r.client == "level-host" for r in seen),
            "a CONNECT",
        )
    assert broker.log_path is not None
    lines = LogFile(broker.log_path).lines()
    levels = {line.split()[2] for line in lines if len(line.split()) > 2}
    if debug:
        assert "DEBUG" in levels, f"{DEBUG_ENV}=1, yet no DEBUG line in {broker.log_path}"
    else:
        assert "DEBUG" not in levels, f"DEBUG lines in {broker.log_path} without {DEBUG_ENV}=1"
        assert any("amqtt broker running" in line for line in lines), f"no INFO line in {broker.log_path}"


# -- amqtt's password file, without a broker ------------------------------------------------------------


def test_amqtt_checks_the_hashes_mosquitto_takes() -> None:
    login = Login("board-b1", "correct horse")
    line = password_line(login)
    user, _, text = line.partition(":")
    parsed = PasswordHash.parse(text)
    assert user == "board-b1"
    assert parsed.matches("correct horse")
    assert not parsed.matches("correct horsf")
    assert "correct" not in repr(parsed)


def test_a_bad_password_file_line_is_named_without_its_hash(tmp_path: Path) -> None:
    path = tmp_path / "passwd"
    path.write_text(
        "# comment\n\nok:" + password_line(Login("ok", "pw")).partition(":")[2] + "\nbad:$6$abc$def\n"
    )
    with pytest.raises(BadPasswordFile, match=r"passwd:4: ") as caught:
        read_password_file(path)
    assert "abc" not in str(caught.value)
    path.write_text("ok:" + password_line(Login("ok", "pw")).partition(":")[2] + "\n")
    assert list(read_password_file(path)) == ["ok"]


def test_amqtt_acl_covers_each_prefix_itself_and_below(policy: AccessPolicy) -> None:
    acl = topic_acl(policy)
    assert acl[policy.login(board_role("b1")).user] == [B1, f"{B1}/#"]
    assert sorted(acl[policy.login(HOST).user]) == sorted(
        form for p in BOARDS.values() for form in (p, f"{p}/#")
    )
    assert acl[policy.login(NEIGHBOUR).user] == [NEIGHBOUR_PREFIX, f"{NEIGHBOUR_PREFIX}/#"]
