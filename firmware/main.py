# The MQTT echo app of the reference tutorial, made testable:
# - it connects with clean_session=False and subscribes only when the broker has no session;
# - it publishes "hello", then sends every message it receives back on the same topic, so
#   messages keep circulating (the echo loop);
# - it prints an idle line when nothing arrived, and disconnects in `finally`.
# Additions for the rig: settings come from config.json, topics are per board, a will marks an
# unclean exit, and each event is also printed as one "@rig" line (see serial_events.py).
import gc
import json
import select
import sys
import time

from umqtt import simple
from umqtt.robust import MQTTClient

import wifi
from serial_events import emit, hexlify

VERSION = "1.0.0"
# At most this many messages are handled per loop turn, so a flood cannot starve the loop.
MAX_MESSAGES_PER_TURN = 16

with open("config.json") as f:
    config = json.load(f)

prefix = config["topic_prefix"]
ECHO_TOPIC = (prefix + "/echo").encode()
STATUS_TOPIC = (prefix + "/status").encode()
PERIOD = config.get("loop_period", 1.0)
# "reference": the tutorial's sleep-then-check loop; "responsive": wait on the socket instead.
MODE = config.get("mode", "reference")
# A memory report every this many messages, to show the echo loop does not leak.
STATS_EVERY = 100
KEEPALIVE = config.get("keepalive", 60)


class EchoClient(MQTTClient):
    # umqtt.robust reconnects with clean_session=False but never subscribes again. When the
    # broker lost our session (it restarted), nothing would ever arrive, so subscribe again.
    def reconnect(self):
        # The tutorial echoes inside the callback, so what arrived before a dropped connection
        # was echoed into that connection and died with it. Keep it so: nothing read on the
        # old connection is carried into the new one.
        inbox.clear()
        held.clear()
        present = super().reconnect()
        no_delay(self)
        emit("connected", session_present=bool(present), reconnect=True)
        if not present:
            subscribe(self)
        return present

    # umqtt.robust's wait_msg() retries on the socket that reconnect() made, and that socket
    # blocks: a check_msg() that hit a dropped connection would then wait for a message
    # forever and the loop would stall. Retry without blocking instead.
    def check_msg(self):
        while True:
            try:
                self.sock.setblocking(False)
                return simple.MQTTClient.wait_msg(self)
            except OSError as e:
                self.log(False, e)
                self.reconnect()


def no_delay(c):
    # umqtt writes one packet in several small writes; with Nagle's algorithm the second one
    # waits for the broker's delayed ACK, ~40 ms per message. The constants are not exported
    # everywhere: IPPROTO_TCP = 6, TCP_NODELAY = 1 (Linux and lwIP alike).
    try:
        c.sock.setsockopt(6, 1, 1)
    except OSError:
        pass


def subscribe(c):
    c.subscribe(ECHO_TOPIC)
    emit("subscribed", topic=ECHO_TOPIC.decode())


inbox = []
# Responsive mode: repeats of a payload held back until its loop period is up.
held = []  # [due, topic, msg]
# Every held message costs heap, and each new payload joins the circulation for good: past this
# many the oldest leaves it, instead of the board dying of MemoryError (seen at ~1,000 on the
# unix port's 2 MB heap; an ESP32 has far less).
MAX_HELD = 64


def sub_cb(topic, msg):
    print((topic, msg))
    emit("received", topic=topic.decode(), hex=hexlify(msg))
    inbox.append((topic, msg))


def echo(c, topic, msg):
    # umqtt.simple's publish, not robust's: robust would reconnect and send the echo into the
    # new session. An echo belongs to the connection its message came on (see reconnect).
    try:
        simple.MQTTClient.publish(c, topic, msg)
    except OSError as e:
        c.log(False, e)
        c.reconnect()
        return False
    emit("published", topic=topic.decode(), hex=hexlify(msg))
    return True


def disconnect_cleanly(c):
    # The broker may be sending us echoes right now. Closing a socket that holds unread bytes
    # makes the kernel send RST instead of FIN; the broker then discards our DISCONNECT and
    # publishes the will. So: say goodbye, read until the broker closes its side, then close.
    # umqtt.simple's publish, not robust's: robust would try to reconnect forever.
    try:
        simple.MQTTClient.publish(c, STATUS_TOPIC, b"offline", True)
        c.sock.write(b"\xe0\0")
    except OSError as e:
        emit("disconnected", clean=False, detail=str(e))
        c.sock.close()
        return
    c.sock.settimeout(2)
    try:
        while c.sock.read(256):
            pass
    except OSError:
        pass  # no EOF within the bound: close anyway
    c.sock.close()
    emit("disconnected", clean=True)


class Turns:
    # What the loop remembers between turns: when we last sent (for keepalive pings) and how
    # many messages were handled (for the periodic memory report).
    def __init__(self):
        self.last_sent = time.ticks_ms()
        self.handled = 0


def drain(c):
    # Read what is pending, at most MAX_MESSAGES_PER_TURN, into the inbox.
    for _ in range(MAX_MESSAGES_PER_TURN):
        before = len(inbox)
        c.check_msg()
        if len(inbox) == before:
            break


def take_inbox():
    pending = inbox[:]
    inbox.clear()
    return pending


def echo_all(c, turns, pending):
    for topic, msg in pending:
        if not echo(c, topic, msg):
            break  # the connection dropped: the rest went with it
        turns.handled += 1
        if turns.handled % STATS_EVERY == 0:
            emit("stats", handled=turns.handled, mem_free=gc.mem_free())
    turns.last_sent = time.ticks_ms()


def idle(c, turns):
    print("other operator")
    emit("idle")
    # umqtt does not ping by itself; without traffic the broker would drop us.
    if KEEPALIVE and time.ticks_diff(time.ticks_ms(), turns.last_sent) > KEEPALIVE * 500:
        c.ping()
        turns.last_sent = time.ticks_ms()


def reference_loop(c):
    # The tutorial's loop: sleep a period, then handle what arrived. Drain first and echo
    # afterwards: echoing inside the callback would let our own echo come back within this
    # same turn, and a message would circulate as fast as the broker can return it instead of
    # once per loop period.
    turns = Turns()
    while True:
        time.sleep(PERIOD)
        drain(c)
        pending = take_inbox()
        if pending:
            echo_all(c, turns, pending)
        else:
            idle(c, turns)


def responsive_loop(c):
    # Wait on the socket instead of sleeping, so a new message is echoed as soon as it arrives.
    # The idle line keeps the loop period's cadence, and each payload still circulates at most
    # once per period: echoed at once, its echo would come straight back and spin the loop as
    # fast as the broker can return it. Such repeats are held until their period is up.
    turns = Turns()
    period_ms = int(PERIOD * 1000)
    poller = select.poll()
    polled = None
    last_echo = {}  # payload -> when it was last echoed
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
            drain(c)
        now = time.ticks_ms()
        ready = [(t, m) for due, t, m in held if time.ticks_diff(due, now) <= 0]
        held[:] = [h for h in held if time.ticks_diff(h[0], now) > 0]
        for topic, msg in take_inbox():
            busy = True
            last = last_echo.get(msg)
            if last is None or time.ticks_diff(now, last) >= period_ms:
                ready.append((topic, msg))
            else:
                held.append([time.ticks_add(last, period_ms), topic, msg])
                if len(held) > MAX_HELD:
                    _, _, dropped = held.pop(0)
                    emit("error", type="HeldOverflow", detail="dropped", hex=hexlify(dropped))
        if ready:
            if len(last_echo) > 32:
                last_echo.clear()  # bounded memory; at worst one early repeat per payload
            for _, msg in ready:
                last_echo[msg] = now
            echo_all(c, turns, ready)
        if time.ticks_diff(now, next_tick) >= 0:
            if not busy:
                idle(c, turns)
            busy = False
            next_tick = time.ticks_add(now, period_ms)


def run():
    wifi.start(config)
    c = EchoClient(
        config["client_id"],
        config["broker_host"],
        config["broker_port"],
        user=config.get("broker_user"),
        password=config.get("broker_password"),
        keepalive=KEEPALIVE,
    )
    c.DEBUG = True
    c.set_callback(sub_cb)
    c.set_last_will(STATUS_TOPIC, b"lost", retain=True)
    present = c.connect(clean_session=False)
    no_delay(c)
    emit("connected", session_present=bool(present), reconnect=False)
    try:
        if not present:
            subscribe(c)
        c.publish(STATUS_TOPIC, b"online", True)
        c.publish(ECHO_TOPIC, b"hello")
        emit("published", topic=ECHO_TOPIC.decode(), hex=hexlify(b"hello"))
        if MODE == "responsive":
            responsive_loop(c)
        else:
            reference_loop(c)
    finally:
        disconnect_cleanly(c)


def deployed_tree():
    # The rig writes rig_manifest.json at deploy; reporting its tree hash lets the rig check
    # that the board runs what it was given.
    try:
        with open("rig_manifest.json") as f:
            return json.load(f).get("tree", "")
    except (OSError, ValueError):
        return ""


emit(
    "boot",
    fw=VERSION,
    tree=deployed_tree(),
    mpy=".".join(str(n) for n in sys.implementation.version[:3]),
    platform=sys.platform,
)
try:
    run()
except Exception as e:
    emit("error", type=type(e).__name__, detail=str(e))
    raise
