"""The firmware's ``config.json``: what the rig tells the board at deploy time."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class FirmwareConfig:
    """Settings the firmware reads at boot. Topics are namespaced by ``topic_prefix`` so that two
    boards, or two runs on one shared broker, never see each other's messages."""

    broker_host: str
    broker_port: int
    client_id: str
    topic_prefix: str
    loop_period: float = 1.0
    keepalive: int = 30

    @property
    def echo_topic(self) -> str:
        return f"{self.topic_prefix}/echo"

    @property
    def status_topic(self) -> str:
        return f"{self.topic_prefix}/status"

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=1, sort_keys=True).encode() + b"\n"
