"""What the coordinator says about a place, as data: its state and its resources.

Built from the keeper's JSON lines (``rig.lab.keeper``); no I/O here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rig.inventory.spec import LabgridSpec
from rig.lab.errors import describe_holder
from rig.settings import LG_COORDINATOR

COORDINATOR_ENV = LG_COORDINATOR.env
# labgrid's own default when neither the inventory nor $LG_COORDINATOR names one.
DEFAULT_COORDINATOR = str(LG_COORDINATOR.default)
# The resource classes labgrid's client drives with ``power`` and ``io`` (see the keeper).
POWER_CLASSES = frozenset(
    {
        "NetworkPowerPort",
        "NetworkUSBPowerPort",
        "NetworkSiSPMPowerPort",
        "PDUDaemonPort",
        "TasmotaPowerPort",
        "NetworkYKUSHPowerPort",
    }
)
OUTPUT_CLASSES = frozenset(
    {
        "ModbusTCPCoil",
        "WaveshareModbusTCPCoil",
        "HttpDigitalOutput",
        "Eth008DigitalOutput",
        "OneWirePIO",
        "NetworkDeditecRelais8",
        "NetworkSysfsGPIO",
        "NetworkLXAIOBusPIO",
        "NetworkHIDRelay",
    }
)
# pyserial's RFC2217 client: ``ign_set_control`` because ser2net answers SET_CONTROL with values
# of its own (a pty has no modem lines), which pyserial would otherwise take as a refusal.
RFC2217_OPTIONS = "ign_set_control"


def coordinator_of(spec: LabgridSpec, env: Mapping[str, str] | None = None) -> str:
    """The coordinator for ``spec``: the inventory's, else ``$LG_COORDINATOR``, else labgrid's default."""
    env = os.environ if env is None else env
    return spec.coordinator or env.get(COORDINATOR_ENV, "").strip() or DEFAULT_COORDINATOR


@dataclass(frozen=True)
class PlaceState:
    """One place at the coordinator: its tags and who holds it since when."""

    name: str
    tags: dict[str, str] = field(default_factory=dict)
    acquired: str | None = None  # labgrid's "host/user"
    changed: float | None = None
    reservation: str | None = None

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> PlaceState:
        changed = raw.get("changed")
        return cls(
            name=str(raw["name"]),
            tags={str(k): str(v) for k, v in dict(raw.get("tags") or {}).items()},
            acquired=str(raw["acquired"]) if raw.get("acquired") else None,
            changed=float(changed) if isinstance(changed, int | float) else None,
            reservation=str(raw["reservation"]) if raw.get("reservation") else None,
        )

    def describe(self) -> str:
        """'free', or 'held by user U on host H since T', for ``rig list``."""
        since = (
            datetime.fromtimestamp(self.changed).astimezone().isoformat(timespec="seconds")
            if self.changed
            else "?"
        )
        if self.acquired:
            return f"held by {describe_holder(self.acquired)} since {since}"
        if self.reservation:
            return f"free, reserved (token {self.reservation}) since {since}"
        return f"free since {since}"


@dataclass(frozen=True)
class PlaceResource:
    """One resource of an acquired place, as labgrid's client sees it (``cls`` and ``params``)."""

    cls: str
    name: str
    path: str
    params: dict[str, Any]

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> PlaceResource:
        return cls(str(raw["cls"]), str(raw["name"]), str(raw.get("path", "")), dict(raw.get("params") or {}))


@dataclass(frozen=True)
class AcquiredPlace:
    """A place this run holds: where its console is and what can cut its power."""

    state: PlaceState
    resources: tuple[PlaceResource, ...]

    @property
    def name(self) -> str:
        return self.state.name

    def serial_url(self) -> str | None:
        """The pyserial URL of the place's console, or None when it has no NetworkSerialPort."""
        for r in self.resources:
            if r.cls == "NetworkSerialPort":
                return (
                    f"rfc2217://{_url_host(str(r.params['host']))}:{int(r.params['port'])}?{RFC2217_OPTIONS}"
                )
        return None

    def power(self) -> PlaceResource | None:
        return next((r for r in self.resources if r.cls in POWER_CLASSES), None)

    def reset_output(self) -> PlaceResource | None:
        return next((r for r in self.resources if r.cls in OUTPUT_CLASSES), None)

    def no_hard_reset(self) -> str | None:
        """Why the rig cannot reset this place's board with no chance of cleanup, or None."""
        if self.power() is not None or self.reset_output() is not None:
            return None
        classes = ", ".join(sorted(r.cls for r in self.resources)) or "none"
        return (
            f"labgrid place {self.name} has no power switch or reset output (its resources: {classes}); "
            "DTR/RTS across RFC2217 is too slow for a reset circuit, so the rig never uses it"
        )


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
