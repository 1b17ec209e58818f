# Connecting until the broker takes the board: the first connect and every reconnect.
#
# The tutorial calls c.connect() once; umqtt.robust 1.0's reconnect() tries again every DELAY
# (2 s), but only after an OSError. A broker that answers and says no ends the program instead:
# umqtt.simple raises MQTTException(code) on a refused CONNACK (a wrong password: mosquitto says
# 5, "not authorized"), and ussl.TlsError when the broker's certificate is not the one the board
# trusts. Neither is an OSError. Trying again every 2 s would not help either: the broker says
# the same until someone changes its accounts or its certificate, and each attempt costs it a
# login check, under TLS a handshake. So each kind of failure gets its own answer:
#
#   the broker out of reach (OSError,   a "broker_unreachable" event, then robust's log and DELAY
#   or it hung up before its CONNACK)   (2 s), as before: trying costs the broker nothing, and the
#                                       board is back as soon as it is
#   refused (CONNACK 1..5)              a "connect_refused" event,
#   TLS handshake failed (ussl.py)      a "tls_error" event,
#                                       then a wait of backoff_initial s, twice as long after
#                                       each further one, at most backoff_max (config.json)
#
# The events say which attempt failed and how long the board now waits, so a test can watch the
# waits grow. The board never stops trying: someone may fix the broker's accounts meanwhile.
# Only a connection the broker accepts starts the waits again from backoff_initial.
#
# Connections the broker accepted and then lost soon after get a wait too. Two boards given one
# client id (the tutorial's fixed "umqtt_client") take the connection from each other: at each
# CONNECT with the id the broker ends the connection that had it (MQTT 3.1.1, 3.1.4-2), and
# MQTT 3.1.1 tells the board nothing about why. So the board that lost it takes that for a lost
# link and, as umqtt.robust would, connects again at once, which takes the id back from the
# other one: a storm, ~15 connects a second on mosquitto at the tests' 0.1 s loop period. What
# tells it from a link that failed by chance is that it goes on: connection after connection
# lost soon after it was made, each taken by the broker at the first try. So:
#
#   the first connection lost soon      connect again at once, as before (a broker restarting
#                                       looks the same once: its outage has its own waits)
#   the next ones, in a row             a "short_connection" event, then a wait of
#                                       backoff_initial s, twice as long after each further
#                                       one, at most backoff_max
#   a connection that lasted, one       the row starts again
#   dropped before its SUBACK (it
#   waited umqtt.robust's DELAY
#   already, echo_client.reconnect),
#   or an attempt that failed (an
#   outage, with waits of its own)
#
# "Soon" is within three times the wait the board would now make: the other board waits about
# as long before it takes the id back, so while the two collide every connection is short and
# both boards' waits grow. (The cure is a client id of its own for each board; this only keeps
# the broker from being hammered until someone sees it.)
import time

from umqtt import simple

import settings
import ussl
from serial_events import emit

# MQTT 3.1.1, 3.2.2.3: the CONNACK return codes a broker refuses a connection with.
REFUSALS = {
    1: "unacceptable protocol version",
    2: "identifier rejected",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorized",
}


# When the board last connected (time.ticks_ms()), how many connections in a row it lost soon
# after making them, and how long it waits if that goes on (see above).
connected_at = None
lost_soon = 0
soon_wait = settings.BACKOFF_INITIAL


def connect(c, clean_session, reconnect):
    # umqtt.simple's connect, until the broker accepts; returns its session present flag.
    global connected_at, lost_soon
    if reconnect:
        wait_if_lost_soon(c.subscribing)
    attempt = 0
    backoff = settings.BACKOFF_INITIAL
    while True:
        attempt += 1
        if attempt > 1:
            lost_soon = 0  # the broker was away or said no: an outage, with waits of its own
        connected_at = time.ticks_ms()  # kept from the attempt the broker accepts
        # umqtt.simple 1.3.4 (still 1.8.0) makes a new socket in connect() and drops the old one
        # unclosed: one socket leaked per reconnect, each holding its buffers (under TLS
        # mbedtls's too) until collected, the connection half-open at the broker meanwhile.
        close(c.sock)
        try:
            return simple.MQTTClient.connect(c, clean_session)
        except simple.MQTTException as e:
            code = e.args[0]
            reason = REFUSALS.get(code, "reserved")
            emit("connect_refused", code=code, reason=reason, **waiting(attempt, backoff, reconnect))
        except ussl.TlsError as e:
            emit("tls_error", detail=str(e), **waiting(attempt, backoff, reconnect))
        except (OSError, IndexError) as e:
            # Out of reach: robust's answer, a fixed wait. IndexError too: umqtt.simple 1.3.4
            # reads the CONNACK without checking that one came, so a broker that closes before
            # answering (amqtt does while it shuts down) gives an empty read, then resp[0].
            c.log(reconnect, e)
            # Wi-Fi is up (wifi.py) but the broker is not there: its own event, so that the rig
            # can tell a person which of the two to look at (address, port, firewall).
            emit(
                "broker_unreachable",
                broker="%s:%d" % (settings.BROKER_HOST, settings.BROKER_PORT),
                error=repr(e),
                attempt=attempt,
                reconnect=reconnect,
            )
            close(c.sock)
            c.delay(attempt)
            continue
        # A refused connection stays open, and under TLS it holds mbedtls's buffers: close it
        # now rather than leave it to the garbage collector.
        close(c.sock)
        time.sleep(backoff)
        backoff = min(backoff * 2, settings.BACKOFF_MAX)


def wait_if_lost_soon(setting_up):
    # Before connecting again: the wait that connections lost soon, in a row, call for.
    # setting_up: the connection dropped before its SUBACK.
    global lost_soon, soon_wait
    if connected_at is None:
        return  # the board never connected
    lasted = time.ticks_diff(time.ticks_ms(), connected_at)
    if lasted >= 3 * soon_wait * 1000 or setting_up:
        lost_soon = 0  # it lasted (a loss by chance), or it has waited already
    else:
        lost_soon += 1
    if lost_soon < 2:
        soon_wait = settings.BACKOFF_INITIAL
        return  # connect at once
    emit("short_connection", lasted_ms=lasted, in_a_row=lost_soon, delay_ms=round(soon_wait * 1000))
    time.sleep(soon_wait)
    soon_wait = min(soon_wait * 2, settings.BACKOFF_MAX)


def waiting(attempt, backoff, reconnect):
    # The event's fields that say how the board goes on.
    return {"attempt": attempt, "delay_ms": round(backoff * 1000), "reconnect": reconnect}


def close(sock):
    # umqtt.robust 1.0 leaves a failed attempt's socket open, one per attempt until collected.
    if sock is None:
        return  # the first attempt failed before umqtt made one
    try:
        sock.close()
    except OSError:
        pass
