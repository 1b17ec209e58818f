# One machine-readable line on the serial console per event the rig waits for:
#   @rig {"ev": "received", "topic": "...", "hex": "..."}
# Payloads are binary-safe hex; the rest of the console stays free for people. The host reads
# these lines with rig/serial_events.py: an event's name and fields are a contract with it.
import binascii
import json
import sys

PREFIX = "@rig "


def emit(ev, **fields):
    fields["ev"] = ev
    sys.stdout.write(PREFIX + json.dumps(fields) + "\n")


def hexlify(data):
    # One allocation for the whole payload, not one string per byte: a 16 KiB payload must not
    # churn the heap of a small board.
    return binascii.hexlify(data).decode()


def boot(version):
    # The first line after a reset: which firmware runs, on which MicroPython and platform, and
    # why the chip last reset where the port can say (the rig names it if the reset was not its own).
    fields = {}
    cause = reset_cause()
    if cause:
        fields["reset_cause"] = cause
    emit(
        "boot",
        fw=version,
        tree=deployed_tree(),
        mpy=".".join(str(n) for n in sys.implementation.version[:3]),
        platform=sys.platform,
        **fields
    )


def reset_cause():
    # machine.reset_cause() is a number; its name is one of machine's *_RESET constants. The
    # unix port has none (there the rig's virtual board knows why MicroPython restarted).
    try:
        import machine

        cause = machine.reset_cause()
    except (ImportError, AttributeError):
        return None
    for name in dir(machine):
        if name.endswith("_RESET") and getattr(machine, name) == cause:
            return name
    return str(cause)


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
