# One machine-readable line on the serial console per event the rig waits for:
#   @rig {"ev": "received", "topic": "...", "hex": "..."}
# Payloads are binary-safe hex; the rest of the console stays free for people. The host reads
# these lines with rig/events.py: an event's name and fields are a contract with it.
import json
import sys

PREFIX = "@rig "


def emit(ev, **fields):
    fields["ev"] = ev
    sys.stdout.write(PREFIX + json.dumps(fields) + "\n")


def hexlify(data):
    return "".join("%02x" % b for b in data)


def boot(version):
    # The first line after a reset: which firmware runs, on which MicroPython and platform.
    emit(
        "boot",
        fw=version,
        tree=deployed_tree(),
        mpy=".".join(str(n) for n in sys.implementation.version[:3]),
        platform=sys.platform,
    )


def error(e):
    # Why the firmware stopped; MicroPython's traceback follows on the console.
    emit("error", type=type(e).__name__, detail=str(e))


def deployed_tree():
    # The rig writes rig_manifest.json at deploy; reporting its tree hash lets the rig check
    # that the board runs what it was given.
    try:
        with open("rig_manifest.json") as f:
            return json.load(f).get("tree", "")
    except (OSError, ValueError):
        return ""
