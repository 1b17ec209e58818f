# One machine-readable line on the serial console per event the rig waits for:
#   @rig {"ev": "received", "topic": "...", "hex": "..."}
# Payloads are binary-safe hex; the rest of the console stays free for people.
import json
import sys

PREFIX = "@rig "


def emit(ev, **fields):
    fields["ev"] = ev
    sys.stdout.write(PREFIX + json.dumps(fields) + "\n")


def hexlify(data):
    return "".join("%02x" % b for b in data)
