"""Choosing a broker by name: the one place that maps a configuration value to a Broker."""

from __future__ import annotations

import os
from pathlib import Path

from rig.broker import amqtt as amqtt_broker
from rig.broker import mosquitto
from rig.broker.access import AccessPolicy
from rig.broker.base import Broker
from rig.broker.external import ExternalBroker, login_from_env
from rig.broker.tls import TlsMaterial
from rig.errors import BrokerError, ConfigError

KINDS = ("auto", "mosquitto", "amqtt", "external")


def make_broker(
    kind: str,
    workdir: Path,
    external: str | None = None,
    *,
    source: str = "broker",
    host: str = "127.0.0.1",
    access: AccessPolicy | None = None,
    tls: TlsMaterial | None = None,
) -> Broker:
    """The broker for ``kind``: "auto", "mosquitto", "amqtt" or "external".

    "auto" is mosquitto when installed, else amqtt. "external" needs ``external`` as ``host:port``
    or ``host:port,ws_port``. ``source`` names where the values came from (an option, a variable)
    in the ConfigError raised for a bad one. ``host`` is the address a managed broker listens on:
    loopback for the virtual board, the bench's LAN address for a board on Wi-Fi. Nothing is
    started here. ``access``: the accounts a managed broker enforces (``rig.broker.access``);
    an external broker's login comes from the environment (``RIG_BROKER_USER`` /
    ``RIG_BROKER_PASSWORD``) instead. ``tls``: a TLS listener on a managed broker.
    """
    chosen = kind.strip().lower()
    if chosen == "auto":
        chosen = "mosquitto" if mosquitto.find_mosquitto() else "amqtt"
    if chosen == "mosquitto":
        if mosquitto.find_mosquitto() is None:
            raise BrokerError(
                f"broker 'mosquitto' requested but mosquitto is not installed: {mosquitto.INSTALL_HINT}"
            )
        return mosquitto.MosquittoBroker(workdir, host=host, access=access, tls=tls)
    if chosen == "amqtt":
        if not amqtt_broker.amqtt_available():
            raise BrokerError(
                f"broker 'amqtt' requested but amqtt is not importable: {amqtt_broker.INSTALL_HINT}"
            )
        return amqtt_broker.AmqttBroker(workdir, host=host, access=access, tls=tls)
    if chosen == "external":
        if not external:
            raise ConfigError(source, "external", "broker 'external' needs host:port or host:port,ws_port")
        return ExternalBroker.from_spec(external, source, login_from_env(os.environ))
    raise ConfigError(source, "kind", f"{kind!r} is not one of {', '.join(KINDS)}")
