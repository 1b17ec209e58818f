"""amqtt as the rig's broker: pure Python, for machines without mosquitto."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any

from rig.broker.amqtt_access import topic_acl, write_password_file
from rig.broker.base import BrokerKind
from rig.broker.managed import ManagedBroker
from rig.broker.record_source import JsonRecordFollower, RecordFollower, file_mark
from rig.errors import BrokerError
from rig.processes import PYTHON_ENV, SYSTEM_ENV, child_environment
from rig.settings import AMQTT_DEBUG

INSTALL_HINT = "install it with `pip install amqtt` or `pip install 'micropython-mqtt-rig[amqtt]'`"
_RUNNER = "rig.broker.amqtt_runner"
_RECORDS_PLUGIN = "rig.broker.amqtt_plugin.BrokerRecordsPlugin"
_PACKET_LOG_PLUGIN = "rig.broker.amqtt_plugin.RedactedPacketLoggerPlugin"
_ADMIT_ALL_PLUGIN = "rig.broker.amqtt_auth.AdmitAllAuthPlugin"
_POLICY_AUTH_PLUGIN = "rig.broker.amqtt_auth.PolicyAuthPlugin"
_ACL_PLUGIN = "rig.broker.amqtt_auth.PrefixAclPlugin"
# The directory that holds the ``rig`` package: the runner child imports it from there even when
# the rig is used from a checkout rather than installed.
_RIG_ROOT = Path(__file__).resolve().parents[2]


def amqtt_available() -> bool:
    """True if amqtt can be imported by this interpreter, which also runs the broker child."""
    return importlib.util.find_spec("amqtt") is not None


class AmqttBroker(ManagedBroker):
    """A private amqtt broker, run by ``rig.broker.amqtt_runner`` in a child Python process.

    Lifecycle as ``ManagedBroker``. Each start rewrites ``workdir/amqtt.json`` (and, with an
    access policy, the hashes in ``workdir/amqtt-passwd``); all runs log to ``workdir/amqtt.log``
    (at INFO; at DEBUG with ``RIG_AMQTT_DEBUG=1``) and write their broker records (``rig.broker.records``) to
    ``workdir/amqtt-records.jsonl``. Sessions live in the child's memory: they survive client
    reconnects, not broker restarts. amqtt speaks MQTT 3.1.1 only and does not enforce keepalive.

    With ``access`` it refuses anonymous clients and wrong passwords (CONNACK 5, as mosquitto),
    and keeps each user to its prefixes: a SUBSCRIBE elsewhere gets the failure code 0x80, a
    PUBLISH elsewhere is dropped, and no message outside them is delivered to it
    (``rig.broker.amqtt_auth``). With ``tls`` a third listener speaks MQTT over TLS.
    """

    kind: BrokerKind = "amqtt"

    @property
    def log_path(self) -> Path:
        return self.workdir / "amqtt.log"

    @property
    def config_path(self) -> Path:
        return self.workdir / "amqtt.json"

    @property
    def records_path(self) -> Path:
        """The JSON lines the broker's records plugin writes (all runs, across restarts)."""
        return self.workdir / "amqtt-records.jsonl"

    @property
    def records_unavailable(self) -> str | None:
        return None

    def record_follower(self) -> RecordFollower | None:
        return JsonRecordFollower(self.records_path, file_mark(self.records_path))

    @property
    def enforces_keepalive(self) -> bool:
        # amqtt 0.12's broker handler ignores read timeouts: a silent client stays connected.
        return False

    def _check_installed(self) -> None:
        if not amqtt_available():
            raise BrokerError(f"amqtt is not importable by {sys.executable}: {INSTALL_HINT}")

    def _prepare(self, port: int, ws_port: int) -> list[str]:
        self.config_path.write_text(json.dumps(self._config(port, ws_port), indent=2), encoding="utf-8")
        # "-m", not the runner's file path: run as a script, its directory (rig/broker) would come
        # first on sys.path and this very module, amqtt.py, would shadow the amqtt package.
        return [sys.executable, "-m", _RUNNER, str(self.config_path)]

    def _env(self) -> dict[str, str]:
        # A Python child, told where the rig is and whether to log at DEBUG; nothing else of ours.
        env = child_environment(SYSTEM_ENV, PYTHON_ENV, (AMQTT_DEBUG.env,))
        inherited = [part for part in env.get("PYTHONPATH", "").split(os.pathsep) if part]
        env["PYTHONPATH"] = os.pathsep.join([str(_RIG_ROOT), *inherited])
        return env

    def _config(self, port: int, ws_port: int) -> dict[str, Any]:
        listeners: dict[str, Any] = {
            "default": {"type": "tcp", "bind": f"{self.host}:{port}"},
            "ws": {"type": "ws", "bind": f"{self.host}:{ws_port}"},
        }
        if self.tls is not None and self.tls_port is not None:
            # MQTT over TLS; the client checks the certificate. amqtt asks clients for one of
            # theirs too (CERT_OPTIONAL) but admits those that send none.
            listeners["tls"] = {
                "type": "tcp",
                "bind": f"{self.host}:{self.tls_port}",
                "ssl": True,
                "certfile": str(self.tls.cert_path),
                "keyfile": str(self.tls.key_path),
            }
        return {
            "listeners": listeners,
            # amqtt's defaults minus the $SYS plugin, whose periodic publishes only add log noise.
            "plugins": {
                "amqtt.plugins.logging_amqtt.EventLoggerPlugin": {},
                # amqtt's packet logger, but a CONNECT's password masked (rig.broker.amqtt_plugin).
                _PACKET_LOG_PLUGIN: {},
                **self._access_plugins(),
                # What the broker received and answered, as records the rig reads
                # (rig.broker.amqtt_plugin): the rig's evidence, not the debug log's text.
                _RECORDS_PLUGIN: {"path": str(self.records_path)},
            },
        }

    def _access_plugins(self) -> dict[str, Any]:
        if self.access is None:
            # Not amqtt's AnonymousAuthPlugin: it lets persistent sessions expire (amqtt_auth.py).
            return {_ADMIT_ALL_PLUGIN: {}}
        # Hashes only: the passwords themselves are never written into the workdir.
        passwd = write_password_file(self.access, self.workdir)
        acl = topic_acl(self.access)
        return {
            _POLICY_AUTH_PLUGIN: {"password_file": str(passwd)},
            _ACL_PLUGIN: {"publish_acl": acl, "subscribe_acl": acl, "receive_acl": acl},
        }
