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


def connect(c, clean_session, reconnect):
    # umqtt.simple's connect, until the broker accepts; returns its session present flag.
    attempt = 0
    backoff = settings.BACKOFF_INITIAL
    while True:
        attempt += 1
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
