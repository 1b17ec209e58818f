# The MQTT echo app of the reference tutorial, made testable:
# - it connects with clean_session=False and subscribes only when the broker has no session;
# - it publishes "hello", then sends every message it receives back on the same topic, so
#   messages keep circulating (the echo loop);
# - it prints an idle line when nothing arrived, and disconnects in `finally`.
# Additions for the rig: settings come from config.json, topics are per board, a will marks an
# unclean exit, and each event is also printed as one "@rig" line (see serial_events.py).
import json
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
KEEPALIVE = config.get("keepalive", 60)


class EchoClient(MQTTClient):
    # umqtt.robust reconnects with clean_session=False but never subscribes again. When the
    # broker lost our session (it restarted), nothing would ever arrive, so subscribe again.
    def reconnect(self):
        # The tutorial echoes inside the callback, so what arrived before a dropped connection
        # was echoed into that connection and died with it. Keep it so: nothing read on the
        # old connection is carried into the new one.
        inbox.clear()
        present = super().reconnect()
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


def subscribe(c):
    c.subscribe(ECHO_TOPIC)
    emit("subscribed", topic=ECHO_TOPIC.decode())


inbox = []


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
    emit("connected", session_present=bool(present), reconnect=False)
    try:
        if not present:
            subscribe(c)
        c.publish(STATUS_TOPIC, b"online", True)
        c.publish(ECHO_TOPIC, b"hello")
        emit("published", topic=ECHO_TOPIC.decode(), hex=hexlify(b"hello"))
        last_sent = time.ticks_ms()
        while True:
            time.sleep(PERIOD)
            # Drain first and echo afterwards: echoing inside the callback would let our own
            # echo come back within this same turn, and a message would circulate as fast as
            # the broker can return it instead of once per loop period.
            for _ in range(MAX_MESSAGES_PER_TURN):
                before = len(inbox)
                c.check_msg()
                if len(inbox) == before:
                    break
            if inbox:
                pending = inbox[:]
                inbox.clear()
                for topic, msg in pending:
                    if not echo(c, topic, msg):
                        break  # the connection dropped: the rest went with it
                last_sent = time.ticks_ms()
            else:
                print("other operator")
                emit("idle")
                # umqtt does not ping by itself; without traffic the broker would drop us.
                if KEEPALIVE and time.ticks_diff(time.ticks_ms(), last_sent) > KEEPALIVE * 500:
                    c.ping()
                    last_sent = time.ticks_ms()
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
