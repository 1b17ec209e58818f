# The echo loop's second mode (config "mode": "responsive"), for the rig's latency tests and
# benchmarks. The tutorial's loop sleeps a period, then handles what arrived, so an echo waits
# for the next turn: half a period on average. This one waits on the socket instead, so a new
# message is echoed as soon as it arrives, while the idle line keeps the period's cadence. Each
# payload still circulates at most once per period: echoed at once, its echo would come straight
# back and spin the loop as fast as the broker can return it. Such repeats are held back until
# their period is up.
import select
import time

import settings
from serial_events import emit, hexlify

# When each payload was last echoed, for at most this many payloads; past it the record is
# dropped (bounded memory; at worst one early repeat per payload).
MAX_REMEMBERED = 32


def run(c):
    period_ms = int(settings.PERIOD * 1000)
    # Repeats held back until their period is up: [due, topic, msg]. Every held message costs
    # heap, and each new payload joins the circulation for good: past MAX_HELD the oldest leaves
    # it, instead of the board dying of MemoryError.
    held = []
    c.per_connection.append(held)  # held repeats die with their connection, as the inbox does
    last_echo = {}  # payload -> when it was last echoed
    poller = select.poll()
    polled = None
    next_tick = time.ticks_add(time.ticks_ms(), period_ms)
    busy = False
    while True:
        if polled is not c.sock:  # robust's reconnect made a new socket
            if polled is not None:
                poller.unregister(polled)
            poller.register(c.sock, select.POLLIN)
            polled = c.sock
        now = time.ticks_ms()
        wake = next_tick
        for due, _, _ in held:
            if time.ticks_diff(due, wake) < 0:
                wake = due
        if poller.poll(max(0, time.ticks_diff(wake, now))):
            c.check_msgs()
        now = time.ticks_ms()
        ready = [(t, m) for due, t, m in held if time.ticks_diff(due, now) <= 0]
        held[:] = [h for h in held if time.ticks_diff(h[0], now) > 0]
        for topic, msg in c.take_received():
            busy = True
            last = last_echo.get(msg)
            if last is None or time.ticks_diff(now, last) >= period_ms:
                ready.append((topic, msg))
            else:
                held.append([time.ticks_add(last, period_ms), topic, msg])
                if len(held) > settings.MAX_HELD:
                    _, _, dropped = held.pop(0)
                    emit("error", type="HeldOverflow", detail="dropped", hex=hexlify(dropped))
        if ready:
            if len(last_echo) > MAX_REMEMBERED:
                last_echo.clear()
            for _, msg in ready:
                last_echo[msg] = now
            c.echo_all(ready)
        if time.ticks_diff(now, next_tick) >= 0:
            if not busy:
                print("other operator")
                c.idle()
            busy = False
            next_tick = time.ticks_add(now, period_ms)
