"""A stand-in for ``mosquitto_sub`` where mosquitto-clients is not installed: paho, given the
same options ``rig up``'s subscribe command uses (``-h -p -u -P -t -v``), run by the same shell
line, so that the line's quoting and its password reader are tested either way.

Like mosquitto_sub, it prints ``TOPIC PAYLOAD`` per message (with ``-v``), and exits 1 when the
broker refuses the login or every subscription (SUBACK 0x80), saying which on stderr.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


def glued(argv: list[str]) -> list[str]:
    """Each option's value glued to it (``-P-x`` for ``-P -x``): argparse takes a separate value
    that starts with ``-`` for an option, mosquitto_sub does not."""
    out: list[str] = []
    arguments = iter(argv)
    for argument in arguments:
        if argument in ("-h", "-p", "-u", "-P", "-t"):
            argument += next(arguments, "")
        out.append(argument)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("-h", dest="host", default="localhost")
    parser.add_argument("-p", dest="port", type=int, default=1883)
    parser.add_argument("-u", dest="user")
    parser.add_argument("-P", dest="password")
    parser.add_argument("-t", dest="topics", action="append", required=True)
    parser.add_argument("-v", dest="verbose", action="store_true")
    args = parser.parse_args(glued(sys.argv[1:]))
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="", clean_session=True)
    if args.user is not None:
        client.username_pw_set(args.user, args.password)
    failed: list[str] = []

    def on_connect(c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            failed.append(f"Connection error: {reason}")
            c.disconnect()
            return
        c.subscribe([(topic, 0) for topic in args.topics])

    def on_subscribe(c: mqtt.Client, _u: Any, _mid: int, reasons: list[Any], _p: Any) -> None:
        if all(r.is_failure for r in reasons):
            failed.append("All subscription requests were denied.")
            c.disconnect()

    def on_message(_c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        payload = message.payload.decode(errors="replace")
        sys.stdout.write(f"{message.topic} {payload}\n" if args.verbose else f"{payload}\n")
        sys.stdout.flush()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.connect(args.host, args.port, keepalive=30)
    client.loop_forever()
    for reason in failed:
        print(reason, file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
