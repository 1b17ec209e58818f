"""What TLS costs: MQTT over TLS against plain TCP, on one locked-down broker, in the same run.

One embedded broker (``make_broker("auto", ...)``: mosquitto when installed) enforcing an
``AccessPolicy`` (no anonymous client) and listening both for plain MQTT (``port``) and for MQTT
over TLS (``tls_port``), with a certificate made for this run (``TlsMaterial``) that names the
rig's server name (what the board checks) and 127.0.0.1 (what paho checks: it connects to an IP
and takes that as the name). Both sides of every comparison use the same broker, the same
accounts and the same firmware; only the transport differs, and the samples are interleaved
(TLS, plain, TLS, plain, ...) so that a drift of the machine's load falls on both alike.

Two virtual boards run ``firmware/`` in responsive mode: "tls" with the config ``board_config``
makes for a broker with TLS (``tls_port``, the CA's PEM, the server name), "plain" with the same
config on the plain port and without the CA. Each has its own account and topic prefix.

1. Board connect time: ``board.soft_reset()``, then the serial line timestamps (taken by the
   host as each line arrives from the pty) of the firmware's "boot" event and of its first
   "connected" event (``reconnect: false``). Between them: the client object, ``wifi.start()``
   (nothing to join on the virtual board) and ``connect_retry.connect``: the TCP connect, under
   TLS the CA parsed into an SSL context and the handshake (``firmware/ussl.py``; mbedtls,
   TLS 1.2), then CONNECT / CONNACK. The imports come before "boot" and are not counted. The
   broker's log would not be cleaner: mosquitto stamps it to the second.
2. Host connect time: a fresh paho client per sample, from ``connect()`` (TCP connect and, under
   TLS, the whole handshake, done synchronously by paho with Python's ssl; the version and
   cipher negotiated are in the figure's notes) to the CONNACK, read on this thread with
   ``loop()`` so that no thread switch is counted. ``TCP_NODELAY`` is set when paho opens the
   socket, as ``HostClient`` does.
3. Echo round trip through the board, as ``bench_echo`` measures it: a host publish on the
   board's echo topic until the board's echo comes back (the second arrival of a unique payload).
   The host's client is on the plain port for both boards, so the difference is the board's link
   alone (broker -> board -> broker, encrypted or not). The notes split the board's part in two
   legs by its "received" and "published" serial lines.

Soft resets are spaced by at least ``MIN_LIFE_S`` per board (see ``RunningBoard.reset``): the
virtual board's supervisor takes a firmware that exits sooner for a crash loop.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import ssl
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import paho.mqtt
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from benchmarks import stats
from benchmarks.runner import BenchContext, Figure
from rig.board.board import Board
from rig.board.virtual_supervisor import CRASH_LOOP_SECONDS
from rig.board_choice import board_config, guarded_secrets
from rig.broker import Broker, make_broker
from rig.broker.access import HOST, NEIGHBOUR_BOARD, AccessPolicy, Login, topic_prefix
from rig.broker.tls import TlsMaterial
from rig.deadline import Deadline
from rig.errors import BrokerError, WaitTimeout
from rig.firmware_config import FirmwareConfig
from rig.host_client import ConnectionRefused, HostClient
from rig.inventory import BoardSpec
from rig.serialio import SerialLog

ORDER = 45
BUDGET_S = 15

TLS_BOARD = "tls"
PLAIN_BOARD = "plain"
LOOPBACK = "127.0.0.1"
HELLO = b"hello"
# Longer than the run: no echoed payload comes round a second time (responsive mode holds a
# repeat back for one period), so every round trip is the echo path alone.
ECHO_PERIOD = 60.0
BOOT_S = 20.0  # a soft reset until "boot", and "boot" until "connected" (a TLS handshake on a busy machine)
HOST_CONNECT_S = 10.0
ECHO_S = 2.0
# How long a firmware runs at least before the next soft reset (see RunningBoard.reset).
MIN_LIFE_S = CRASH_LOOP_SECONDS + 0.1


def run(ctx: BenchContext) -> list[Figure]:
    n_boot = ctx.n(3 if ctx.quick else 5)
    n_host = ctx.n(5 if ctx.quick else 20)
    n_echo = ctx.n(30 if ctx.quick else 100)

    run_id = str(os.getpid())
    prefixes = {name: topic_prefix(name, run_id) for name in (TLS_BOARD, PLAIN_BOARD)}
    broker = start_broker(ctx, prefixes, topic_prefix(NEIGHBOUR_BOARD, run_id))
    ctx.log(f"broker {broker.kind}: plain :{broker.port}, TLS :{broker.tls_port}")
    boards = {name: start_board(ctx, broker, name, prefix) for name, prefix in prefixes.items()}

    ctx.log(f"board connect: {n_boot} soft resets per board, interleaved")
    boot = board_connect_times(boards, n_boot)
    ctx.log(f"host connect: {n_host} paho connects per transport, interleaved")
    host, negotiated = host_connect_times(broker, n_host)
    ctx.log(f"echo round trip: {n_echo} per board, interleaved")
    echo = echo_round_trips(ctx, broker, boards, n_echo)

    return figures(broker, boot, host, negotiated, echo)


# -- parts ---------------------------------------------------------------------------------------


@dataclasses.dataclass
class RunningBoard:
    """A virtual board running the firmware (closed at ``ctx.close()``), its config, the serial
    log the measures read, and when (host time) its firmware last booted."""

    board: Board
    config: FirmwareConfig
    log: SerialLog
    booted: float

    def reset(self) -> dict[str, Any]:
        """Soft-reset the board once its firmware is old enough to be let go (``MIN_LIFE_S``);
        the new firmware's "boot" event."""
        # The virtual board's supervisor takes a firmware that exits within CRASH_LOOP_SECONDS
        # of its start for a crash, and after CRASH_LOOP_LIMIT in a row (the deploy's own quick
        # restarts count) it powers the board off as crash-looping. A reset here comes a few
        # ms after the previous connect, so it waits out the rest of that bound; nothing on the
        # board marks the moment, hence a bounded sleep (at most MIN_LIFE_S).
        left = self.booted + MIN_LIFE_S - time.time()
        if left > 0:
            time.sleep(min(left, MIN_LIFE_S))
        self.log.from_now()
        self.board.soft_reset()
        booted = self.log.expect_event("boot", BOOT_S)
        self.booted = float(booted["t"])
        return booted

    def await_loop(self) -> None:
        """Wait until the firmware is in its loop: "hello" goes out after the subscription."""
        self.log.expect_event("published", BOOT_S, topic=self.config.echo_topic, hex=HELLO.hex())


def start_broker(ctx: BenchContext, prefixes: dict[str, str], neighbour_prefix: str) -> Broker:
    """The locked-down broker with a TLS listener, one account per board of ``prefixes`` (name
    -> topic prefix); stopped, and its keys deleted, at ``ctx.close()``."""
    policy = AccessPolicy.generate(prefixes, neighbour_prefix)
    # Valid for the rig's server name (the board's check) and for the IP paho connects to.
    tls = TlsMaterial.generate(addresses=(LOOPBACK,))
    ctx.on_close(tls.discard)  # registered first: runs after the broker stopped
    workdir = Path(tempfile.mkdtemp(prefix="broker-", dir=ctx.tmp))
    broker = make_broker("auto", workdir, host=LOOPBACK, access=policy, tls=tls)
    ctx.on_close(broker.stop, broker)
    broker.start()
    return broker


def start_board(ctx: BenchContext, broker: Broker, name: str, prefix: str) -> RunningBoard:
    """A virtual board with the firmware in responsive mode, connected (over TLS for
    ``TLS_BOARD``, plain TCP otherwise) and in its loop."""
    spec = BoardSpec(name=name, kind="virtual", origin="benchmarks/bench_tls.py")
    board = ctx.board(name)
    config = board_config(
        spec,
        broker,
        client_id=f"bench-tls-{name}-{os.getpid()}",
        topic_prefix=prefix,
        loop_period=ECHO_PERIOD,
        mode="responsive",
    )
    if name != TLS_BOARD:
        config = dataclasses.replace(config, broker_port=broker.port, tls_ca=None, tls_server_name=None)
    board.capture.redact(guarded_secrets(spec, config))
    log = SerialLog(board.capture, ctx.tmp / f"serial-{name}.log")
    ctx.on_close(log.close, log)
    ctx.deploy(board, config)
    running = RunningBoard(board, config, log, float(log.expect_event("boot", BOOT_S)["t"]))
    running.await_loop()
    return running


# -- 1. board connect ----------------------------------------------------------------------------


def board_connect_times(boards: dict[str, RunningBoard], n: int) -> dict[str, list[float]]:
    """Per board, ms from its "boot" event to its first "connected" event, over ``n`` soft resets."""
    times: dict[str, list[float]] = {name: [] for name in boards}
    for _ in range(n):
        for name, b in boards.items():
            booted = b.reset()
            connected = b.log.expect_event("connected", BOOT_S, reconnect=False)
            times[name].append((connected["t"] - booted["t"]) * 1e3)
            b.await_loop()  # the next reset interrupts the loop, not the start
    return times


# -- 2. host connect -----------------------------------------------------------------------------


def host_connect_times(broker: Broker, n: int) -> tuple[dict[str, list[float]], set[str]]:
    """ms per paho connect (to the CONNACK), over TLS and over plain TCP, ``n`` each; and the
    TLS versions and ciphers negotiated."""
    login, material, tls_port = broker.login(HOST), broker.tls, broker.tls_port
    if login is None or material is None or tls_port is None:
        raise BrokerError(f"the {broker.kind} broker has no accounts or no TLS listener: {broker!r}")
    # Python's defaults: the certificate must chain to the CA and name the host connected to.
    context = ssl.create_default_context(cafile=str(material.ca_path))
    targets: dict[str, tuple[int, ssl.SSLContext | None]] = {
        "tls": (tls_port, context),
        "plain": (broker.port, None),
    }
    times: dict[str, list[float]] = {name: [] for name in targets}
    negotiated: set[str] = set()
    for i in range(n):
        for name, (port, tls) in targets.items():
            client_id = f"bench-tls-host-{name}-{os.getpid()}-{i}"
            ms, protocol = paho_connect_ms(broker.host, port, client_id, login, tls)
            times[name].append(ms)
            if tls is not None:
                negotiated.add(protocol)
    return times, negotiated


def paho_connect_ms(
    host: str, port: int, client_id: str, login: Login, tls: ssl.SSLContext | None
) -> tuple[float, str]:
    """One connect of a fresh paho client: ms from ``connect()`` to the CONNACK, and the
    protocol ("TCP", or the TLS version and cipher); then it leaves with a DISCONNECT."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
    client.username_pw_set(login.user, login.password)
    if tls is not None:
        client.tls_set_context(tls)
        client.tls_insecure_set(False)  # the certificate must name the host connected to
    answers: list[ReasonCode] = []
    protocol = ["TCP"]

    def on_connect(c: mqtt.Client, userdata: Any, flags: Any, rc: ReasonCode, props: Any) -> None:
        answers.append(rc)

    def on_socket_open(c: mqtt.Client, userdata: Any, sock: Any) -> None:
        # Before CONNECT is written: without it the CONNECT could wait out Nagle.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if isinstance(sock, ssl.SSLSocket):  # paho opens it after the handshake
            cipher = sock.cipher()
            protocol[0] = f"{sock.version()} {cipher[0] if cipher else '?'}"

    client.on_connect = on_connect
    client.on_socket_open = on_socket_open
    transport = "TLS" if tls is not None else "TCP"
    started = time.perf_counter()
    try:
        client.connect(host, port, keepalive=30)
    except (OSError, ssl.SSLError) as e:
        raise BrokerError(f"paho could not connect to {host}:{port} over {transport}: {e}") from e
    deadline = Deadline(HOST_CONNECT_S)
    try:
        while not answers:
            if deadline.expired:
                raise WaitTimeout(
                    f"the CONNACK to paho client {client_id} over {transport} ({host}:{port})",
                    HOST_CONNECT_S,
                    [],
                    None,
                )
            client.loop(timeout=deadline.remaining_or(0.5))
        elapsed = (time.perf_counter() - started) * 1e3
        if answers[0].is_failure:
            raise ConnectionRefused(
                f"the broker at {host}:{port} ({transport}) refused {client_id} as {login.user}: "
                f"{answers[0]}",
                reason=str(answers[0]),
                code=answers[0].value,
            )
    finally:
        client.disconnect()  # paho writes the DISCONNECT and closes the socket at once
    return elapsed, protocol[0]


# -- 3. echo round trip --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class EchoSamples:
    """One board's echo round trips (ms), and two legs of each read off its serial lines: host
    publish to the board's "received" line, and that line to its "published" line (both lines
    stamped by the host as they come out of the pty, so each leg includes the pty's latency)."""

    rtt: list[float]
    to_board: list[float]
    on_board: list[float]


def echo_round_trips(
    ctx: BenchContext, broker: Broker, boards: dict[str, RunningBoard], n: int
) -> dict[str, EchoSamples]:
    """Per board, ms from a host publish on its echo topic to the echo's arrival, ``n`` each,
    one message at a time, the boards alternating."""
    client = HostClient(broker.host, broker.port, f"bench-tls-echo-{os.getpid()}", login=broker.login(HOST))
    client.connect()
    ctx.on_close(client.close, client)
    for b in boards.values():
        client.subscribe(b.config.echo_topic)
    sent: dict[str, dict[str, float]] = {name: {} for name in boards}  # board -> payload hex -> t
    times: dict[str, list[float]] = {name: [] for name in boards}
    try:
        for i in range(n):
            for name, b in boards.items():
                topic, payload = b.config.echo_topic, b"rtt-%s-%05d" % (name.encode(), i)
                t = sent[name][payload.hex()] = time.time()
                client.publish(topic, payload)
                # The first arrival is the host's own publish; the second is the board's echo.
                arrived = client.wait_count(topic, payload, 2, ECHO_S)[1].t
                times[name].append((arrived - t) * 1e3)
    finally:
        ctx.release(client)
    return {name: legs(b, sent[name], times[name]) for name, b in boards.items()}


def legs(b: RunningBoard, sent: dict[str, float], rtt: list[float]) -> EchoSamples:
    """``rtt`` with the legs of each echo, from the first "received" and the first "published"
    line of each payload (a payload comes round again only after the loop period)."""
    topic = b.config.echo_topic
    received: dict[str, float] = {}
    published: dict[str, float] = {}
    for seen, ev in ((received, "received"), (published, "published")):
        for event in b.log.events(ev, topic=topic):
            seen.setdefault(event["hex"], float(event["t"]))
    to_board = [(received[h] - t) * 1e3 for h, t in sent.items() if h in received]
    on_board = [(published[h] - received[h]) * 1e3 for h in sent if h in received and h in published]
    return EchoSamples(rtt, to_board, on_board)


# -- figures -------------------------------------------------------------------------------------


def figures(
    broker: Broker,
    boot: dict[str, list[float]],
    host: dict[str, list[float]],
    negotiated: set[str],
    echo: dict[str, EchoSamples],
) -> list[Figure]:
    where = f"{broker.kind} with accounts (no anonymous client), plain and TLS listeners side by side"
    tls_boot, plain_boot = boot[TLS_BOARD], boot[PLAIN_BOARD]
    tls_echo, plain_echo = echo[TLS_BOARD].rtt, echo[PLAIN_BOARD].rtt
    return [
        Figure.from_samples(
            "tls.board.connect",
            tls_boot,
            "ms",
            baseline_name="plain TCP, same firmware and broker",
            baseline=plain_boot,
            notes=(
                f"virtual board (MicroPython unix port, mbedtls, TLS 1.2), {where}: serial line "
                "timestamps of the firmware's 'boot' event to its first 'connected' event after a "
                "soft reset (client set-up, TCP connect, CA parsed, TLS handshake, CONNECT/CONNACK; "
                "imports are before 'boot'), soft resets alternating between the TLS and the plain "
                f"board. TLS adds {stats.median(tls_boot) - stats.median(plain_boot):.1f} ms (p50)"
                + (
                    ". The broker's log is no finer measure: mosquitto stamps it to the second"
                    if broker.kind == "mosquitto"
                    else ""
                )
            ),
        ),
        Figure.from_samples(
            "tls.host.connect",
            host["tls"],
            "ms",
            baseline_name="plain TCP, same paho client and account",
            baseline=host["plain"],
            notes=(
                f"paho-mqtt {paho.mqtt.__version__} on this host ({ssl.OPENSSL_VERSION}; "
                f"{', '.join(sorted(negotiated))}), {where}: "
                "a fresh client per sample, "
                "connect() (TCP connect and, under TLS, the whole handshake with the certificate "
                "checked against the run's CA and 127.0.0.1) until the CONNACK, read on the "
                f"measuring thread; TLS and plain alternating. TLS adds "
                f"{stats.median(host['tls']) - stats.median(host['plain']):.2f} ms (p50)"
            ),
        ),
        Figure.from_samples(
            "tls.echo.rtt.p50",
            tls_echo,
            "ms",
            baseline_name="plain TCP board p50",
            baseline=plain_echo,
            notes=(
                f"responsive mode, loop period {ECHO_PERIOD:.0f}s, as bench_echo measures it: host "
                "publish to the second arrival of a unique payload on the board's echo topic, one "
                "at a time, the TLS and the plain board alternating; the host's client is on the "
                "plain port for both, so the difference is the board's link (broker -> board -> "
                f"broker) encrypted: {stats.median(tls_echo) - stats.median(plain_echo):.2f} ms (p50). "
                + legs_note(echo[TLS_BOARD], echo[PLAIN_BOARD])
            ),
        ),
        p99("tls.echo.rtt.p99", tls_echo, plain_echo),
    ]


def legs_note(tls: EchoSamples, plain: EchoSamples) -> str:
    """Where the TLS board's time goes, from its serial lines (p50s, TLS vs plain)."""

    def p50(xs: Sequence[float]) -> str:
        return f"{stats.median(xs):.2f}" if xs else "-"

    return (
        f"Legs from the boards' serial lines (p50, TLS vs plain): host publish -> board's "
        f"'received' line {p50(tls.to_board)} vs {p50(plain.to_board)} ms, 'received' -> "
        f"'published' line {p50(tls.on_board)} vs {p50(plain.on_board)} ms (0: both lines came "
        "in one read of the pty and share its timestamp)"
    )


def p99(name: str, samples: Sequence[float], baseline: Sequence[float]) -> Figure:
    return Figure.single(
        name,
        stats.percentile(samples, 99),
        "ms",
        baseline_name="plain TCP board p99",
        baseline_value=stats.percentile(baseline, 99),
        samples=len(samples),
        notes=f"of {len(samples)} samples: about the largest but one" if len(samples) >= 50 else "",
    )
