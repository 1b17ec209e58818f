# The MQTT echo app of the reference tutorial, in its order: join Wi-Fi; connect with
# clean_session=False and subscribe only when the broker kept no session for us; publish
# "hello"; send every message that arrives back on its topic, so that messages keep circulating
# (the echo loop); print "other operator" when nothing arrived; disconnect in `finally`.
#
# What the rig adds lives in modules named for their job:
#   settings.py          config.json, written by the rig at deploy: broker, topics, period, limits
#   echo_client.py       the tutorial's MQTTClient with the umqtt fixes, the echo and presence
#   connect_retry.py     a broker that refuses the board is asked again later, less and less often
#   ussl.py              TLS, when config.json names the CA the broker's certificate must come from
#   clean_disconnect.py  a goodbye the broker cannot take for a lost connection
#   responsive_loop.py   the loop's second mode: wait on the socket instead of sleeping
#   link_watch.py        a broker gone silent, found by keepalive; socket timeouts, no Nagle
#   bounded_read.py      a message larger than the firmware takes is dropped, not read whole
#   serial_events.py     the "@rig" lines the rig reads on the console
import time

import serial_events
import settings
import wifi
from echo_client import EchoClient

VERSION = "1.0.0"
serial_events.boot(VERSION)

c = EchoClient(
    settings.CLIENT_ID,
    settings.BROKER_HOST,
    settings.BROKER_PORT,
    user=settings.BROKER_USER,
    password=settings.BROKER_PASSWORD,
    keepalive=settings.KEEPALIVE,
    # umqtt.simple's own TLS switch: it wraps the socket with ussl.wrap_socket(sock, **ssl_params).
    ssl=settings.TLS_CA is not None,
    ssl_params={"cadata": settings.TLS_CA, "server_hostname": settings.TLS_SERVER_NAME},
)
try:
    wifi.start()

    c.DEBUG = True  # print what umqtt.robust does when the connection drops

    def sub_cb(topic, msg):
        print((topic, msg))
        c.echo_later(topic, msg)  # back on the same topic, once this turn's reading is done

    c.set_callback(sub_cb)

    # Returns once the broker took the board; until then it tries again (connect_retry.py).
    if not c.connect(clean_session=False):
        c.subscribe(settings.ECHO_TOPIC)

    c.announce_online()
    c.publish(settings.ECHO_TOPIC, b"hello")

    if settings.MODE == "responsive":
        import responsive_loop

        responsive_loop.run(c)  # waits on the socket instead of sleeping; never returns

    while 1:
        # Slowly, so that the circulation can be watched (the tutorial's 1 s; tests go faster).
        time.sleep(settings.PERIOD)

        # Handle what MQTT brought: every message goes back out.
        if c.check_msgs():
            c.echo_received()

        # Nothing to handle: time for something else.
        else:
            print("other operator")
            c.idle()

except Exception as e:
    serial_events.error(e)
    raise
finally:
    c.disconnect()
