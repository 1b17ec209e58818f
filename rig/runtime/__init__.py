"""The MicroPython runtime a board runs: what it says it is (``identity``), and what the bench
pins it to (``pin``)."""

from rig.runtime.identity import MpyAbi, RuntimeIdentity, RuntimeReadError, read_runtime

__all__ = ["MpyAbi", "RuntimeIdentity", "RuntimeReadError", "read_runtime"]
