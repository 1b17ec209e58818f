"""Secrets on the console: the capture hides them (``***``) and records which one each line
carried, so a test fails naming the secret (``broker_password``), never showing it."""

from __future__ import annotations

import datetime
from pathlib import Path

from rig.health.failures import SecretOnConsole
from rig.inventory.spec import PRINTABLE_SECRETS
from rig.serialio.capture import SecretSighting


def check_secrets(sightings: list[SecretSighting], log_path: Path | None) -> None:
    """Raise ``SecretOnConsole`` naming every secret the board printed in ``sightings`` (but
    those it may print, ``PRINTABLE_SECRETS``: hidden all the same)."""
    sightings = [s for s in sightings if s.key not in PRINTABLE_SECRETS]
    if not sightings:
        return
    keys = sorted({s.key for s in sightings})
    first = {key: next(s for s in sightings if s.key == key) for key in keys}
    shown = "\n".join(
        f"  - {key}: {sum(1 for s in sightings if s.key == key)} line(s), first at "
        f"{datetime.datetime.fromtimestamp(first[key].t).isoformat(timespec='microseconds')}"
        for key in keys
    )
    where = f"\n  the log shows *** in its place: {log_path}" if log_path else ""
    raise SecretOnConsole(
        f"the firmware printed its secret {', '.join(keys)} on the console "
        f"(the value is not shown here):\n{shown}{where}"
    )
