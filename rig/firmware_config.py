"""The firmware's config file: what the rig tells the board at deploy time, in the shape the
firmware's contract (``rig-contract.yaml``, ``rig.contract``) declares."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rig.contract import FirmwareContract, NotDeclared, firmware_contract

# The rig's own firmware, for a config made without a contract (the rig's tests, benchmarks).
OWN_FIRMWARE = Path(__file__).resolve().parents[1] / "firmware"


def own_contract() -> FirmwareContract:
    return firmware_contract(OWN_FIRMWARE)


@dataclass(frozen=True)
class FirmwareConfig:
    """What the rig writes for one board: its own values (broker, client id, topic prefix,
    login, Wi-Fi, TLS) and the app's own settings the contract declares, set by tests.

    Topics and the client id come from the contract: a firmware with a fixed client id or topic
    (the tutorial's ``umqtt_client`` and ``foo_topic``) keeps it whatever the rig would give.
    Topics are namespaced by ``topic_prefix`` where the contract uses ``{prefix}``, so that two
    boards, or two runs on one shared broker, never see each other's messages."""

    broker_host: str
    broker_port: int
    # The client id the board connects with: the rig's, unless the contract fixes another (then
    # that one, whatever is given here).
    client_id: str
    topic_prefix: str
    # What the rig asks of the firmware's loop; written under the app's loop_period and mode keys
    # where it has them (None: the firmware's own default).
    loop_period: float | None = None
    mode: str | None = None
    # MQTT keepalive (s) the firmware asks the broker for; it pings after half of it in silence,
    # and takes a broker it has not heard from for 1.5 of it for lost (firmware/link_watch.py).
    keepalive: int = 30
    # Provisioning for a board on Wi-Fi. The secrets stay out of repr() and so out of pytest's
    # output; the serial capture redacts them too (see ``secrets``).
    wifi_ssid: str | None = None
    wifi_password: str | None = field(default=None, repr=False)
    broker_user: str | None = None
    broker_password: str | None = field(default=None, repr=False)
    # TLS: the CA certificate (PEM) the board trusts, and nothing else; absent, plain TCP. The
    # board connects to broker_host (often an IP) and checks that the server's certificate
    # names tls_server_name, as a client that gives SNI does.
    tls_ca: str | None = field(default=None, repr=False)
    tls_server_name: str | None = None
    # The app's own settings this config sets, over the contract's defaults (firmware_config marker).
    app: Mapping[str, Any] = field(default_factory=dict, hash=False)
    contract: FirmwareContract = field(default_factory=own_contract, hash=False)

    def __post_init__(self) -> None:
        # Rendered once: "{client_id}" gives the rig's back, a fixed id replaces it.
        object.__setattr__(self, "client_id", self._render(self.contract.client_id))
        unknown = sorted(set(self.app) - set(self.contract.app))
        if unknown:
            raise NotDeclared(f"the firmware has no {unknown[0]!r} setting ({self.contract.path} config.app)")

    def secrets(self) -> list[str]:
        """Values that must never reach a log or a report."""
        return [s for s in (self.wifi_password, self.broker_password) if s]

    # -- what the contract makes of it --------------------------------------------------------

    def _render(self, template: str) -> str:
        return self.contract.render(template, prefix=self.topic_prefix, client_id=self.client_id)

    @property
    def echo_topic(self) -> str:
        return self._render(self.contract.echo_topic)

    @property
    def has_status(self) -> bool:
        return self.contract.status_topic is not None

    @property
    def status_topic(self) -> str:
        """The status topic; ``NotDeclared`` (a check "not checked") if the firmware has none."""
        return self._render(self.contract.require_status())

    def topics(self) -> list[str]:
        """Every topic of the board: the echo topic and the status topic if it has one."""
        found = [self.echo_topic]
        if self.contract.status_topic is not None:
            found.append(self._render(self.contract.status_topic))
        return found

    def watch_filters(self) -> list[str]:
        """What a host client subscribes to to see every message of the board: the prefix's
        wildcard when every topic is under it, else each topic."""
        prefix = self.topic_prefix + "/"
        topics = self.topics()
        if all(t.startswith(prefix) for t in topics):
            return [prefix + "#"]
        return topics

    def app_settings(self) -> dict[str, Any]:
        """The app's own settings as written: the contract's defaults, the rig's loop period and
        mode where the app has those keys, then this config's own."""
        settings = dict(self.contract.app)
        for key, value in (("loop_period", self.loop_period), ("mode", self.mode)):
            if value is not None and key in settings:
                settings[key] = value
        settings.update(self.app)
        return settings

    def setting(self, key: str) -> Any:
        """One of the app's settings as written; ``NotDeclared`` if the firmware has no such key."""
        self.contract.require_app_key(key)
        return self.app_settings()[key]

    @property
    def effective_loop_period(self) -> float:
        """The loop period the firmware runs at: its loop_period key as written, else the fixed
        period its contract states."""
        settings = self.app_settings()
        if "loop_period" in settings:
            return float(settings["loop_period"])
        assert self.contract.fixed_loop_period is not None  # the contract's parser requires one
        return self.contract.fixed_loop_period

    @property
    def file_name(self) -> str:
        return self.contract.config_file

    def file_bytes(self) -> bytes:
        """The config file's content, in the format the contract declares."""
        values = {
            "broker_host": self.broker_host,
            "broker_port": self.broker_port,
            "client_id": self.client_id,
            "topic_prefix": self.topic_prefix,
            "keepalive": self.keepalive,
            "wifi_ssid": self.wifi_ssid,
            "wifi_password": self.wifi_password,
            "broker_user": self.broker_user,
            "broker_password": self.broker_password,
            "tls_ca": self.tls_ca,
            "tls_server_name": self.tls_server_name,
        }
        return self.contract.config_bytes(values, self.app_settings())

    def to_json(self) -> bytes:
        """The config file's content (JSON for the rig's own firmware; see ``file_bytes``)."""
        return self.file_bytes()
