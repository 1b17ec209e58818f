"""Choosing a broker by name: the one place that maps a configuration value to a Broker."""

from __future__ import annotations

import functools
import importlib.metadata
import os
import subprocess
from pathlib import Path

from rig.broker import amqtt as amqtt_broker
from rig.broker import mosquitto
from rig.broker.access import AccessPolicy
from rig.broker.base import Broker
from rig.broker.external import ExternalBroker, login_from_env
from rig.broker.tls import TlsMaterial
from rig.errors import BrokerError, ConfigError
from rig.settings import BROKERS

# The names a broker is chosen by: the settings table's, which --rig-broker and rig gate take.
KINDS = BROKERS


def chosen_kind(kind: str) -> str:
    """The broker ``kind`` stands for: "auto" is mosquitto when installed, else amqtt."""
    chosen = kind.strip().lower()
    if chosen == "auto":
        return "mosquitto" if mosquitto.find_mosquitto() else "amqtt"
    return chosen


# Asked once per process: the installed broker does not change during a run, and the pytest runs a
# test starts in-process (pytester) then print their header without starting mosquitto again.
@functools.cache
def broker_version(kind: str) -> str | None:
    """The version of a managed broker ``kind`` (mosquitto's own answer, amqtt's package), or
    None when it cannot be told: results differ between brokers, so a run says which it used."""
    if kind == "amqtt":
        try:
            return importlib.metadata.version("amqtt")
        except importlib.metadata.PackageNotFoundError:
            return None
    executable = mosquitto.find_mosquitto() if kind == "mosquitto" else None
    if executable is None:
        return None
    try:
        # ``mosquitto -h`` starts with "mosquitto version 2.0.11" and exits at once.
        done = subprocess.run([executable, "-h"], capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    words = done.stdout.split("\n", 1)[0].split()
    return words[2] if words[:2] == ["mosquitto", "version"] and len(words) > 2 else None


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
    chosen = chosen_kind(kind)
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
