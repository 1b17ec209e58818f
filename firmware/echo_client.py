# The tutorial's MQTTClient (umqtt.robust), with what the echo loop needs on top of it:
# - fixes where the locked umqtt versions fall short (umqtt.simple 1.3.4 and umqtt.robust 1.0,
#   from PyPI, pinned in package.json); each says which version it is for, and goes when the
#   lock moves to a version that no longer needs it;
# - the echo itself, sent after the turn's reading rather than from inside the callback;
# - presence on the status topic, and an "@rig" event line for each thing the rig waits for.
import gc
import json
import sys
import time

from umqtt.robust import MQTTClient
from umqtt.simple import MQTTException

import bounded_read
import clean_disconnect
import connect_retry
import link_watch
import whole_packet
import settings
from serial_events import PREFIX, emit, hexlify

# Payload bytes per piece of an event line's hex (emit_payload).
HEX_CHUNK = 64


def emit_payload(ev, topic, msg):
    # The "received" / "published" event line, with the payload's hex written in pieces. Built
    # whole (the hex, then its JSON, then the line) the events of a max_payload message (16 KiB)
    # would need about 7 times its size of heap at once, more than an ESP32 has free.
    out = sys.stdout
    out.write('%s{"ev": "%s", "topic": %s, "hex": "' % (PREFIX, ev, json.dumps(topic.decode())))
    view = memoryview(msg)
    for i in range(0, len(msg), HEX_CHUNK):
        out.write(hexlify(view[i : i + HEX_CHUNK]))
    out.write('"}\n')


class EchoClient(MQTTClient):
    def __init__(self, client_id, server, port, **kw):
        super().__init__(client_id, server, port, **kw)
        # Presence, retained on the status topic: "online" after connecting, "offline" on a
        # clean goodbye, and "lost" (this will, published by the broker) when the board vanished.
        self.set_last_will(settings.STATUS_TOPIC, b"lost", retain=True)
        self.connected = False
        self.inbox = []  # (topic, msg) read this turn, echoed after the reading
        # Lists of messages read on the current connection; a reconnect empties them.
        self.per_connection = [self.inbox]
        self.last_sent = time.ticks_ms()  # for keepalive pings
        self.handled = 0  # echoes sent, for the periodic memory report
        self.link = link_watch.LinkWatch()  # a silent broker, found by keepalive
        # Set from a SUBSCRIBE until its SUBACK: still set, the subscribe did not finish.
        self.subscribing = False
        # A refused SUBSCRIBE (see subscribe): set when the last one was, and the wait before
        # the next attempt, twice as long after each refusal; a granted one starts it again.
        self.refused = False
        self.refused_wait = settings.BACKOFF_INITIAL

    def connect(self, clean_session=True):
        # The tutorial's connect, tried until the broker takes the board (connect_retry.py): a
        # broker out of reach, a refusal or a failed TLS handshake is reported and tried again
        # later, not the end of the program.
        present = connect_retry.connect(self, clean_session, False)
        self.link.attach(self.sock)
        self.connected = True
        self.last_sent = time.ticks_ms()
        emit("connected", session_present=bool(present), reconnect=False)
        return present

    def reconnect(self):
        # The tutorial echoes inside the callback, so what arrived before a dropped connection
        # was echoed into that connection and died with it. Keep it so: nothing read on the old
        # connection is carried into the new one.
        for pending in self.per_connection:
            pending.clear()
        while True:
            present = self.rejoin()
            if not self.subscribing:
                return present
            if self.refused:
                continue  # subscribe waited already, as long as the refusals asked for
            # The new connection dropped before the SUBACK: a broker that is shutting down
            # (amqtt, restarted by the rig) still takes the board, then closes. Wait as
            # umqtt.robust does after a lost connection, then start over on another one.
            self.delay(0)

    def rejoin(self):
        # One connection, made and set up as the board needs it; returns the broker's session
        # present flag. Not umqtt.robust 1.0's reconnect(): it tries again only after an
        # OSError, so a broker that refuses the board (restarted with other accounts) or fails
        # its TLS handshake would end the program; connect_retry waits longer after each such
        # answer instead.
        present = connect_retry.connect(self, False, True)
        self.link.attach(self.sock)
        emit("connected", session_present=bool(present), reconnect=True)
        # umqtt.robust 1.0 (PyPI, the locked version) reconnects with clean_session=False but
        # never subscribes again, nor does 1.0.3 (the newest). When the broker lost our session
        # (it restarted), nothing would ever arrive: subscribe again. Also when our last
        # SUBSCRIBE got no SUBACK: the session the broker kept may not hold it.
        if self.subscribing:
            present = False
        if not present:
            self.subscribe(settings.ECHO_TOPIC)
        if self.subscribing:
            return present  # it failed, and closed the connection: reconnect() starts over
        # The broker may have published our will ("lost") meanwhile: we are back.
        self.announce_online()
        return present

    def log(self, in_reconnect, e):
        # umqtt.robust's report of a failed read, write or connect attempt: an event the rig can
        # time a fault by (the console line stays, with DEBUG on).
        emit("connection_error", reconnecting=in_reconnect, detail=repr(e))
        super().log(in_reconnect, e)

    def check_msg(self):
        # umqtt.robust 1.0 (PyPI, the locked version): its wait_msg() retries on the socket that
        # reconnect() made, and that socket blocks, so a check_msg() that hit a dropped
        # connection would wait for a message forever and the loop would stall. Retry without
        # blocking instead. (Fixed in robust 1.0.2, micropython-lib 4dc2d5e, which gives up
        # after two attempts where this keeps trying.)
        while True:
            try:
                self.link.listen()
                self.sock.setblocking(False)
                return bounded_read.wait_msg(self)  # simple's, with max_payload
            except OSError as e:
                self.log(False, e)
                self.reconnect()

    def check_msgs(self):
        # Read what is pending, at most MAX_MESSAGES_PER_TURN so that a flood cannot starve
        # the loop; how many messages wait to be echoed. umqtt.simple 1.3.4 (PyPI, the locked
        # version): check_msg() returns None whether or not a message came (micropython-lib
        # returns its op from 1.4.0 on), so count what the callback queued.
        for _ in range(settings.MAX_MESSAGES_PER_TURN):
            before = len(self.inbox)
            self.check_msg()
            if len(self.inbox) == before:
                break
        return len(self.inbox)

    def wait_msg(self):
        # What umqtt.simple's subscribe reads its SUBACK with (see subscribe).
        if self.subscribing:
            return bounded_read.wait_msg(self)  # this connection only
        return super().wait_msg()  # umqtt.robust's: reconnects when the read fails

    def subscribe(self, topic, qos=0):
        # umqtt.simple 1.3.4's subscribe, with these changes:
        #
        # The SUBSCRIBE is written whole (whole_packet.py): umqtt.simple 1.3.4 packs its
        # remaining length into one byte, so a topic above 122 bytes made a malformed packet.
        #
        # It waits for its SUBACK with self.wait_msg(), which is umqtt.robust 1.0's: when the
        # read fails, that one reconnects and reads on. The subscribe then waited, on the new
        # connection, for the answer to the SUBSCRIBE sent on the old one: forever, while every
        # message that came was read but never echoed (the broker restarted just after taking
        # the board). So until the SUBACK, wait_msg reads this connection only. If it drops (or
        # the SUBSCRIBE cannot be sent: OSError 32, EPIPE), the subscribe ends unfinished, with
        # `subscribing` still set; the connection is closed, so the next read or write fails
        # and reconnect() subscribes again.
        #
        # A SUBACK that refuses (0x80): umqtt.simple 1.3.4 raises MQTTException, which ended the
        # firmware. Without its subscription the board has nothing to echo, so it is reported
        # and handled as a subscribe that did not finish: closed, and tried again on a new
        # connection (docs/broker-scenarios.md, suback-failure). The broker will likely say the
        # same again (its ACL), so, as connect_retry.py does after a refused connect, the board
        # first waits backoff_initial s, twice as long after each further refusal, at most
        # backoff_max; a granted SUBSCRIBE starts the waits again. It waits before it closes,
        # so that the broker sees each wait on the connection it refused.
        self.subscribing = True
        self.refused = False
        try:
            self.await_suback(whole_packet.subscribe(self, topic, qos))
        except OSError as e:
            self.log(False, e)
            connect_retry.close(self.sock)
            return
        except MQTTException as e:
            self.refused = True
            wait = self.refused_wait
            emit(
                "error",
                type="SubscribeRefused",
                detail="SUBACK 0x%02x for %s" % (e.args[0], topic.decode()),
                delay_ms=round(wait * 1000),
            )
            self.refused_wait = min(wait * 2, settings.BACKOFF_MAX)
            time.sleep(wait)
            connect_retry.close(self.sock)
            return
        self.subscribing = False
        self.refused_wait = settings.BACKOFF_INITIAL
        emit("subscribed", topic=topic.decode())

    def await_suback(self, pid):
        # umqtt.simple 1.3.4's subscribe after its SUBSCRIBE: read until the SUBACK comes
        # (bounded_read hands its first byte back), check it answers ours, raise on a refusal.
        while True:
            if self.wait_msg() == 0x90:
                resp = self.sock.read(4)
                assert resp[1] == pid >> 8 and resp[2] == pid & 0xFF
                if resp[3] == 0x80:
                    raise MQTTException(resp[3])
                return

    def publish(self, topic, msg, retain=False, qos=0):
        super().publish(topic, msg, retain, qos)
        emit("published", topic=topic.decode(), hex=hexlify(msg))

    def announce_online(self):
        # umqtt.robust's publish: it reconnects until the status is out. No event: the rig
        # reads the status topic itself.
        MQTTClient.publish(self, settings.STATUS_TOPIC, b"online", True)

    def echo_later(self, topic, msg):
        # The callback's half of the echo. The tutorial publishes inside the callback, but then
        # our own echo can come back within the same turn, and a message would circulate as fast
        # as the broker can return it instead of once per loop period. So the loop reads first
        # and echoes afterwards.
        if topic != settings.ECHO_TOPIC:
            # Not what the board subscribed to (a broker sent its retained message on another
            # topic, amqtt did on a reconnect): echoing it would publish onto that topic, the
            # status topic even. Reported and dropped (docs/broker-scenarios.md).
            emit("error", type="UnexpectedTopic", detail="message on %s, not subscribed" % topic.decode())
            return
        emit_payload("received", topic, msg)
        self.inbox.append((topic, msg))

    def take_received(self):
        pending = self.inbox[:]
        self.inbox.clear()  # in place: per_connection holds this list
        return pending

    def echo_received(self):
        self.echo_all(self.take_received())

    def echo_all(self, messages):
        for topic, msg in messages:
            if not self.echo(topic, msg):
                break  # the connection dropped: the rest went with it
            self.handled += 1
            if self.handled % settings.STATS_EVERY == 0:
                # Collected first: what is left free is what the firmware keeps, so the rig
                # can tell a leak from garbage not yet collected.
                gc.collect()
                emit("stats", handled=self.handled, mem_free=gc.mem_free())
        self.last_sent = time.ticks_ms()

    def echo(self, topic, msg):
        # Not robust's publish: robust would reconnect and send the echo into the new session. An
        # echo belongs to the connection its message came on (see reconnect). Written whole
        # (whole_packet.py), so a Ctrl-C never leaves half an echo before the goodbye.
        try:
            whole_packet.publish(self, topic, msg)
        except OSError as e:
            self.log(False, e)
            self.reconnect()
            return False
        emit_payload("published", topic, msg)
        return True

    def idle(self):
        # Collected first, as for "stats": what is left free is what the firmware keeps, so the
        # rig sees a leak on the turns when nothing arrives too (stats come only with echoes).
        # Nothing else runs on an idle turn; on an ESP32 a collection takes a few milliseconds.
        gc.collect()
        emit("idle", mem_free=gc.mem_free())
        # Keepalive pings, and a broker that no longer answers them (link_watch.py).
        self.link.tend(self)

    def disconnect(self):
        # Never connected (Wi-Fi or the first connect failed): nobody to say goodbye to.
        if self.connected:
            clean_disconnect.disconnect(self, settings.STATUS_TOPIC)
