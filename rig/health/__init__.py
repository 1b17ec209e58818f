"""The board's health, judged in every HIL test: one module per check.

- ``reboots``: a board that restarted although the rig did not reset it, and why;
- ``console_secrets``: a secret of the board's config printed on its console, by name;
- ``heap``: the free heap after collection, sampled from the firmware's ``stats`` events, and
  its drift per message;
- ``keepalive``: the broker dropping the board because its keepalive ran out.

Each check raises a ``HealthFailure`` subclass (``failures``), so a test's failure says which
check failed by its class. ``watch.HealthWatch`` applies the per-test checks to one test's
window of the serial capture; the plugin's ``rig.fixtures.health`` runs it for every test.
"""

from rig.health.failures import (
    HealthFailure,
    HeapDrift,
    KeepaliveExpired,
    SecretOnConsole,
    UnrequestedReboot,
)

__all__ = ["HealthFailure", "HeapDrift", "KeepaliveExpired", "SecretOnConsole", "UnrequestedReboot"]
