"""The MicroPython runtime a board runs: what it says it is (``identity``), and what the bench
pins it to (``pin``)."""

from rig.runtime.identity import MpyAbi, RuntimeIdentity, RuntimeReadError, read_runtime
from rig.runtime.pin import PinError, RuntimeMismatch, RuntimePin, check_runtime, mismatches, parse_pin

__all__ = [
    "MpyAbi",
    "PinError",
    "RuntimeIdentity",
    "RuntimeMismatch",
    "RuntimePin",
    "RuntimeReadError",
    "check_runtime",
    "mismatches",
    "parse_pin",
    "read_runtime",
]
