"""Faults a board meets on a bench and in the field, injected by the rig: one module per kind.

- ``base``: the ``Fault`` interface and ``FaultUnavailable`` (why a fault cannot be made here);
- ``network``: the virtual board's link (``rig.netns``): down, flapping, blackholed, slow;
- ``broker``: the broker stopped for a while, or wedged (SIGSTOP);
- ``drill``: injects one fault and checks what the firmware documents it does about it.
"""

from rig.faults.base import Fault, FaultUnavailable
from rig.faults.drill import Drill, FaultNotHandled, FaultTimes

__all__ = ["Drill", "Fault", "FaultNotHandled", "FaultTimes", "FaultUnavailable"]
