"""Boot to connected: from the rig's reset of the virtual board to the broker's CONNECT of its firmware.

The figure the suite records per run (``rig.evidence.boot_time``), here over many boots: the
virtual board (MicroPython's unix port) runs the repo's firmware against the embedded broker, and
is reset N times each way, by a power cycle (the supervisor kills MicroPython and starts it
again) and by a soft reset (Ctrl-D, as after a deploy). Each figure is measured exactly as a test
run measures it: ``boot_time.measure`` on the records the broker tap reads, so with mosquitto it
ends when the tap read the CONNECT line (resolution one tap poll, 20 ms, late by 10 ms on
average), with amqtt at the broker's own stamp of the packet. Both brokers run when both are
installed, so the two clocks can be compared.

Baselines, measured in the same run on the same broker and clock:

- a plain host MQTT client's connect (paho, through ``rig.host_client``): from just before it
  opens its socket to the broker's CONNECT, stamped as the board's is. The ratio is how many
  times longer a booting board takes than a client that is already running;
- the bare unix port's start: ``micropython -c "print('up')"`` from the spawn to its line, what
  any power cycle of the virtual board costs before the firmware runs (a row of its own).

p50 and p95 of each, reported, never asserted.
"""

from __future__ import annotations

import os
import subprocess
import time
from typing import Any

from benchmarks import stats
from benchmarks.runner import BenchContext, Figure
from rig.broker.access import HOST
from rig.broker.mosquitto import find_mosquitto
from rig.broker.records import Connect
from rig.deadline import Deadline
from rig.evidence import boot_time
from rig.evidence.broker_tap import BrokerLogTap
from rig.evidence.timeline import Timeline
from rig.host_client import HostClient
from rig.serial_events import parse_event

ORDER = 35
BUDGET_S = 60
# The bound of each wait (s): a boot of the virtual board takes well under a second.
WAIT_S = 15.0
HOST_BASELINE = "host MQTT client connect (socket open to the broker's CONNECT, same clock)"


def run(ctx: BenchContext) -> list[Figure]:
    n = ctx.n(4 if ctx.quick else 15)
    kinds = ["mosquitto", "amqtt"] if find_mosquitto() else ["amqtt"]
    if ctx.quick:
        kinds = kinds[:1]
    figures: list[Figure] = []
    for kind in kinds:
        figures += _boots_on(ctx, kind, n)
    starts = [_unix_port_start(ctx) for _ in range(n)]
    figures += _percentiles(
        "boot.unix_port_start", starts, None, "bare micropython -c: spawn to its first line (no firmware)"
    )
    return figures


def _boots_on(ctx: BenchContext, kind: str, n: int) -> list[Figure]:
    broker = ctx.broker(kind)
    board = ctx.board(f"boot-{kind}")
    config = ctx.firmware_config(broker, f"boot-{kind}")
    folder = ctx.tmp / f"tap-{kind}"
    folder.mkdir()
    timeline = Timeline(folder)
    ctx.on_close(timeline.close)
    # The needle every client id of this module carries: the board's and the host clients'.
    tap = BrokerLogTap(broker, f"-{os.getpid()}", folder, timeline, also=(config.client_id,))
    ctx.on_close(tap.close)
    records = tap.records
    ctx.deploy(board, config)  # ends with a soft reset: the firmware boots and connects
    _await_boot(board, records, config.client_id, 0)
    boots: dict[str, list[float]] = {"power_cycle": [], "soft_reset": []}
    clock = ""
    for i in range(2 * n):
        how = "power_cycle" if i % 2 == 0 else "soft_reset"
        mark = records.mark()
        if how == "power_cycle":
            board.power_cycle()
        else:
            board.soft_reset()
        _await_boot(board, records, config.client_id, mark)
        assert board.last_reset_at is not None
        boot = boot_time.measure(
            records,
            boot_time.Reset(board.last_reset_how, board.last_reset_at),
            config.client_id,
            broker_kind=broker.kind,
        )
        if boot.seconds is None:
            raise RuntimeError(f"{kind}: boot {i} {boot.note}")
        boots[how].append(boot.seconds)
        clock = boot.clock
    host = [_host_connect(broker, records, i) for i in range(n)]
    ctx.log(f"{kind}: power cycle {boots['power_cycle']}, soft reset {boots['soft_reset']}, host {host}")
    resolution = boot_time.RESOLUTION_S[clock]
    note = f"{kind}, clock {clock} (resolution {resolution * 1000:g} ms)"
    if clock == boot_time.CLOCK_TAP:
        # Below a few polls the tap's period shows in both the figure and the baseline.
        note += ": an upper bound, late by up to one tap poll; the amqtt rows are the broker's own stamps"
    note += "; the virtual board joins no Wi-Fi: a real board adds its join time"
    figures = []
    for how, samples in boots.items():
        figures += _percentiles(f"boot.{kind}.{how}_to_connected", samples, host, note)
    return figures


def _await_boot(board: Any, records: Any, client: str, mark: int) -> None:
    """The broker's CONNECT of ``client`` after ``mark``, then the firmware's hello on its
    console: the boot is over before the next reset."""
    records.wait_for(Connect, WAIT_S, client=client, after=mark)
    start = board.last_reset_index
    hello = board.capture.wait(
        lambda ln: (ev := parse_event(ln.text)) is not None and ev.get("ev") == "published",
        start,
        Deadline(WAIT_S),
        include_partial=False,
    )
    if hello is None:
        raise RuntimeError(f"no hello from the firmware within {WAIT_S:g}s: {board.last_seen(8, start)}")


def _host_connect(broker: Any, records: Any, i: int) -> float:
    """A running client's connect, stamped as the board's boot is: the baseline."""
    client_id = f"bench-host-{os.getpid()}-{i}"
    client = HostClient(broker.host, broker.port, client_id, login=broker.login(HOST))
    mark = records.mark()
    began = time.time()
    client.connect(timeout=WAIT_S)
    try:
        records.wait_for(Connect, WAIT_S, client=client_id, after=mark)
        boot = boot_time.measure(
            records, boot_time.Reset("connect", began), client_id, broker_kind=broker.kind
        )
    finally:
        client.close()
    if boot.seconds is None:
        raise RuntimeError(f"host client {client_id}: {boot.note}")
    return boot.seconds


def _unix_port_start(ctx: BenchContext) -> float:
    from rig.board.virtual import find_micropython

    began = time.time()
    proc = ctx.spawn([find_micropython(), "-c", "print('up')"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    took = time.time() - began
    proc.wait(WAIT_S)
    ctx.release(proc)
    if line.strip() != "up":
        raise RuntimeError(f"micropython -c printed {line!r}")
    return took


def _percentiles(name: str, samples: list[float], baseline: list[float] | None, notes: str) -> list[Figure]:
    """p50 and p95 rows of ``samples``, each against the same percentile of ``baseline``."""
    rows = []
    for p in (50, 95):
        base = stats.percentile(baseline, p) if baseline else None
        rows.append(
            Figure.single(
                f"{name}.p{p}",
                stats.percentile(samples, p),
                "s",
                baseline_name=HOST_BASELINE if base is not None else "",
                baseline_value=base,
                samples=len(samples),
                spread=stats.spread(samples),
                notes=notes,
            )
        )
    return rows
