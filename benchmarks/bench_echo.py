"""Echo round trip and board memory drift, on virtual boards running ``firmware/`` and mosquitto.

Round trip: the time from a host publish on the board's echo topic until the board's echo of it
comes back to the host. The host is subscribed to the echo topic, so the broker first hands it
its own injection: the echo is the SECOND arrival of that payload. Every message has its own
payload (``rtt-00042``): in responsive mode the firmware holds a repeat of a payload back until
its loop period is up, so only a new payload measures the echo path. Arrival times are taken on
paho's network thread (``Message.t``), send times just before ``publish``.

Baseline, measured in the same run and interleaved with the responsive samples: the broker-only
round trip, host -> broker -> host (the host publishes on a topic it subscribes itself, which the
board does not). The echo path adds broker -> board -> broker to it.

- responsive mode: one message at a time, each waiting for its echo (bounded). Loop period 60 s,
  so no payload comes round a second time during the run and the figures are the echo path alone.
- reference mode (the tutorial's sleep-then-check loop) at its 1 s period: a message waits for
  the next turn, so ~0.5 s on average. Fewer samples (40), sent at random offsets, several per
  turn, without waiting. Every payload circulates once per turn for as long as the firmware runs
  and a turn drains at most ``max_messages_per_turn`` messages (16, from the board's config), so
  at most 10 are injected per boot (fewer should the limit be lower: "hello" circulates too); a
  soft reset (a clean disconnect; mosquitto does not queue QoS 0 for the offline session) ends
  their circulation before the next batch.

Memory drift: ``gc.mem_free()`` from the firmware's ``stats`` events (every ``stats_every``
echoes, 100, from the board's config) over
6,000 echoes in responsive mode. Unique payloads cannot be used here: each one keeps circulating
and sits in the firmware's hold-back list between circulations, so live memory grows with every
distinct payload by design (with firmware 1.0.0 the list could not grow past ~1,000 entries on
the fragmented heap: MemoryError). So a fixed working set of 8 payloads circulates at a 5 ms
period: every echo is a full round trip board -> broker -> board, and the firmware's live state
stays the same size, so a slope means a leak. The firmware takes ``gc.mem_free()`` right after
``gc.collect()``, so each sample is what it keeps alive: one figure, the least-squares slope,
fitted and bounded as the soak test does (``rig.health.heap``).
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from benchmarks import stats
from benchmarks.runner import BenchContext, Figure
from rig.health.heap import DRIFT_BOUND, HeapSample, fit

ORDER = 40
BUDGET_S = 45

HELLO = b"hello"
RESPONSIVE_PERIOD = 60.0  # longer than the run: nothing circulates twice
REFERENCE_PERIOD = 1.0  # the tutorial's
REFERENCE_PER_BOOT = 10  # at most; below the board's max_messages_per_turn (see per_boot)
MEM_PERIOD = 0.005
MEM_WORKING_SET = 8
TARGET_P50_MS = 5.0
TARGET_P99_MS = 20.0


def run(ctx: BenchContext) -> list[Figure]:
    broker = ctx.broker()
    n_resp = ctx.n(50 if ctx.quick else 200)
    n_ref = ctx.n(10 if ctx.quick else 40)
    n_mem = 3000 if ctx.quick else 6000

    ctx.log(f"responsive round trip: {n_resp} echoes, interleaved with {n_resp} broker-only")
    echo_resp, base = responsive_round_trips(ctx, broker, n_resp)
    ctx.log(f"reference round trip: {n_ref} echoes at the 1 s period")
    echo_ref, per_turn = reference_round_trips(ctx, broker, n_ref)
    ctx.log(f"memory drift: {n_mem} echoes of {MEM_WORKING_SET} circulating payloads")
    points, stats_every = memory_samples(ctx, broker, n_mem)

    figures = rtt_figures("echo.responsive", echo_resp, base, responsive_notes(echo_resp, base))
    figures += rtt_figures("echo.reference", echo_ref, base, reference_notes(echo_ref, per_turn))
    figures += memory_figures(points, stats_every)
    return figures


# -- boards and clients --------------------------------------------------------------------------


def start_board(ctx: BenchContext, broker: Any, name: str, period: float, mode: str) -> tuple[Any, Any, Any]:
    """A fresh virtual board running the firmware in ``mode``, connected and subscribed."""
    from rig.serialio import SerialLog

    board = ctx.board(name)
    config = dataclasses.replace(ctx.firmware_config(broker, name, loop_period=period), mode=mode)
    log = SerialLog(board.capture, ctx.tmp / f"serial-{name}.log")
    ctx.on_close(log.close, log)
    ctx.deploy(board, config)
    # "hello" is published after the subscription: the firmware is in its loop.
    log.expect_event("published", 15.0, topic=config.echo_topic, hex=HELLO.hex())
    return board, config, log


def host_client(ctx: BenchContext, broker: Any, name: str, *topics: str) -> Any:
    from rig.broker.access import HOST
    from rig.host_client import HostClient

    client = HostClient(
        broker.host, broker.port, f"bench-echo-{name}-{os.getpid()}", login=broker.login(HOST)
    )
    client.connect()
    ctx.on_close(client.close, client)
    for topic in topics:
        client.subscribe(topic)
    return client


def second_arrival(client: Any, topic: str, payload: bytes, timeout: float) -> float:
    """When ``payload`` arrived on ``topic`` the second time (the first is the host's own)."""
    return float(client.wait_count(topic, payload, 2, timeout)[1].t)


# -- round trips ---------------------------------------------------------------------------------


def responsive_round_trips(ctx: BenchContext, broker: Any, n: int) -> tuple[list[float], list[float]]:
    """(echo round trips, broker-only round trips), in ms, one message at a time, interleaved."""
    board, config, _ = start_board(ctx, broker, "responsive", RESPONSIVE_PERIOD, "responsive")
    base_topic = f"{config.topic_prefix}/baseline"
    client = host_client(ctx, broker, "responsive", config.echo_topic, base_topic)
    echo: list[float] = []
    base: list[float] = []
    try:
        for i in range(n):
            payload = b"rtt-%05d" % i
            sent = time.time()
            client.publish(config.echo_topic, payload)
            echo.append((second_arrival(client, config.echo_topic, payload, 2.0) - sent) * 1e3)

            payload = b"base-%05d" % i
            sent = time.time()
            client.publish(base_topic, payload)
            arrived = client.wait_count(base_topic, payload, 1, 2.0)[0].t
            base.append((arrived - sent) * 1e3)
    finally:
        ctx.release(client)
        ctx.release(board)
    return echo, base


def per_boot(max_messages_per_turn: int) -> int:
    """Payloads injected per firmware boot: all of them and "hello" must fit in one turn's
    reading, or some would wait a turn longer and the round trips would measure the limit."""
    return max(1, min(REFERENCE_PER_BOOT, max_messages_per_turn - 1))


def reference_round_trips(ctx: BenchContext, broker: Any, n: int) -> tuple[list[float], int]:
    """(echo round trips in ms at the reference loop, sent at random offsets, in batches per
    boot; the board's messages-per-turn limit)."""
    board, config, log = start_board(ctx, broker, "reference", REFERENCE_PERIOD, "reference")
    client = host_client(ctx, broker, "reference", config.echo_topic)
    rng = random.Random(20240607)
    topic = config.echo_topic
    batch_size = per_boot(config.setting("max_messages_per_turn"))
    echo: list[float] = []
    try:
        for boot in range(math.ceil(n / batch_size)):
            if boot:
                log.from_now()
                board.soft_reset()
                log.expect_event("published", 15.0, topic=topic, hex=HELLO.hex())
            batch = [b"ref-%02d-%02d" % (boot, i) for i in range(min(batch_size, n - len(echo)))]
            sent = {}
            for payload in batch:
                # Random gaps spread the sends over the loop's phase (mean 0.15 s: ~1.5 turns).
                time.sleep(rng.uniform(0.0, 0.3))
                sent[payload] = time.time()
                client.publish(topic, payload)

            def all_echoed(received: list[Any], batch: list[bytes] = batch) -> bool:
                counts = Counter(m.payload for m in received if m.topic == topic)
                return all(counts[p] >= 2 for p in batch)

            client.wait_for(
                all_echoed, f"the echo of each of {len(batch)} payloads", 3 * REFERENCE_PERIOD + 2
            )
            echo += [(second_arrival(client, topic, p, 0.0) - sent[p]) * 1e3 for p in batch]
    finally:
        ctx.release(client)
        ctx.release(board)
    return echo, config.setting("max_messages_per_turn")


def rtt_figures(prefix: str, echo: Sequence[float], base: Sequence[float], notes: str) -> list[Figure]:
    baseline = "broker-only round trip (host->broker->host)"
    figures = [
        Figure.from_samples(
            f"{prefix}.rtt.p50", echo, "ms", baseline_name=f"{baseline} p50", baseline=base, notes=notes
        ),
    ]
    for label, pick in (("p99", lambda xs: stats.percentile(xs, 99)), ("max", max)):
        figures.append(
            Figure.single(
                f"{prefix}.rtt.{label}",
                pick(echo),
                "ms",
                baseline_name=f"{baseline} {label}",
                baseline_value=pick(base),
                samples=len(echo),
            )
        )
    return figures


def responsive_notes(echo: Sequence[float], base: Sequence[float]) -> str:
    p50, p99 = stats.median(echo), stats.percentile(echo, 99)
    met50 = "met" if p50 < TARGET_P50_MS else "NOT met"
    met99 = "met" if p99 < TARGET_P99_MS else "NOT met"
    return (
        f"responsive mode, loop period {RESPONSIVE_PERIOD:.0f}s (no second circulation during the run), "
        f"{len(echo)} unique payloads one at a time, each waiting for its echo; the broker-only baseline "
        f"is interleaved with them. Targets: p50 < {TARGET_P50_MS:.0f} ms {met50} ({p50:.2f} ms), "
        f"p99 < {TARGET_P99_MS:.0f} ms {met99} ({p99:.2f} ms). Round trip minus broker-only p50: "
        f"{p50 - stats.median(base):.2f} ms (broker -> board -> broker)"
    )


def reference_notes(echo: Sequence[float], per_turn: int) -> str:
    return (
        f"reference mode (sleep, then drain) at the {REFERENCE_PERIOD:.0f}s period: a message waits for "
        f"the next turn, expected mean ~{REFERENCE_PERIOD * 500:.0f} ms, measured mean "
        f"{statistics.fmean(echo):.0f} ms. Only {len(echo)} samples (each waits up to a turn; 200 would "
        f"take minutes one at a time), sent without waiting at random offsets (gaps uniform 0-0.3 s), "
        f"{per_boot(per_turn)} per firmware boot with a soft reset between batches, because every "
        f"payload circulates once per turn and a turn drains at most {per_turn} (max_messages_per_turn). "
        f"The p99 of {len(echo)} samples "
        f"is rough (it is about the largest). Baseline: the broker-only samples of the responsive run"
    )


# -- memory --------------------------------------------------------------------------------------


def memory_samples(ctx: BenchContext, broker: Any, n: int) -> tuple[list[tuple[int, int]], int]:
    """((handled, mem_free) of every ``stats`` event until ``n`` echoes were handled, the board's
    stats interval)."""
    board, config, log = start_board(ctx, broker, "memory", MEM_PERIOD, "responsive")
    client = host_client(ctx, broker, "memory")  # injects only: it need not see the traffic
    try:
        for i in range(MEM_WORKING_SET):
            client.publish(config.echo_topic, b"mem-%02d" % i)
        stats_every = config.setting("stats_every")
        target = max(stats_every, n // stats_every * stats_every)
        log.expect_event("stats", 60.0, handled=target)
        points = [(int(e["handled"]), int(e["mem_free"])) for e in log.events("stats")]
    finally:
        ctx.release(client)
        ctx.release(board)
    return [p for p in points if p[0] <= target], stats_every


def memory_figures(points: list[tuple[int, int]], stats_every: int) -> list[Figure]:
    """The heap drift the soak test judges (``rig.health.heap``: the same fit, the same bound),
    next to its bound: the firmware reports ``gc.mem_free()`` right after ``gc.collect()``, so
    each sample is what the firmware keeps alive."""
    drift = fit([HeapSample(handled, free, 0.0) for handled, free in points])
    verdict = "met" if drift.bytes_per_message >= -DRIFT_BOUND else "NOT met"
    return [
        Figure.single(
            "echo.responsive.heap_drift",
            drift.bytes_per_message,
            "bytes/message",
            baseline_name=f"bound: -{DRIFT_BOUND:g} bytes/message (0 = no leak)",
            baseline_value=-DRIFT_BOUND,
            samples=len(points),
            spread={"stderr": drift.stderr},
            notes=(
                f"responsive mode, {MEM_WORKING_SET} payloads circulating at a {MEM_PERIOD * 1e3:.0f} ms "
                f"period, stats every {stats_every} echoes; least squares of free heap after "
                f"gc.collect() against echoes handled: {drift.describe()}; bound {verdict}"
            ),
        )
    ]
