"""mosquitto 2.0 as the rig's broker: the reference broker, whose log names every packet it handled."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from rig.broker.access import AccessPolicy
from rig.broker.base import BrokerKind
from rig.broker.managed import ManagedBroker
from rig.broker.mosquitto_access import access_config_lines
from rig.broker.record_source import MosquittoRecordFollower, RecordFollower, file_mark
from rig.broker.tls import TlsMaterial
from rig.errors import BrokerError

# Debian and Ubuntu install it in /usr/sbin, which is not on a normal user's PATH.
_DEBIAN_PATH = Path("/usr/sbin/mosquitto")
INSTALL_HINT = (
    "install it with `apt-get install mosquitto` (Debian/Ubuntu) or `brew install mosquitto` (macOS)"
)


def find_mosquitto() -> str | None:
    """The mosquitto executable, or None if it is not installed."""
    found = shutil.which("mosquitto")
    if found:
        return found
    return str(_DEBIAN_PATH) if os.access(_DEBIAN_PATH, os.X_OK) else None


class MosquittoBroker(ManagedBroker):
    """A private mosquitto on two loopback listeners: MQTT over TCP and over WebSocket.

    Lifecycle as ``ManagedBroker``. Each start rewrites ``workdir/mosquitto.conf``; all runs log
    to ``workdir/mosquitto.log``. Sessions live in memory (``persistence false``): they survive
    client reconnects, not broker restarts.
    """

    kind: BrokerKind = "mosquitto"

    def __init__(
        self,
        workdir: Path,
        *,
        executable: str | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        ws_port: int | None = None,
        access: AccessPolicy | None = None,
        tls: TlsMaterial | None = None,
    ) -> None:
        super().__init__(workdir, host=host, port=port, ws_port=ws_port, access=access, tls=tls)
        self._executable = executable

    @property
    def log_path(self) -> Path:
        return self.workdir / "mosquitto.log"

    @property
    def config_path(self) -> Path:
        return self.workdir / "mosquitto.conf"

    @property
    def records_unavailable(self) -> str | None:
        return None

    def record_follower(self) -> RecordFollower | None:
        # Its log (log_type all) names every packet a client sent and every CONNACK.
        return MosquittoRecordFollower(self.log_path, file_mark(self.log_path))

    def _check_installed(self) -> None:
        self._binary()

    def _binary(self) -> str:
        if self._executable is None:
            self._executable = find_mosquitto()
        if self._executable is None:
            raise BrokerError(f"mosquitto is not installed: {INSTALL_HINT}, or use the amqtt broker")
        return self._executable

    def _prepare(self, port: int, ws_port: int) -> list[str]:
        self.config_path.write_text(self._config(port, ws_port), encoding="utf-8")
        return [self._binary(), "-c", str(self.config_path)]

    def _config(self, port: int, ws_port: int) -> str:
        lines = [
            "# Written by rig.broker.mosquitto for one test session; rewritten on every start.",
            "per_listener_settings false",
            *self._access_lines(),
            "persistence false",
            # A broker on a test bench forwards small packets one at a time; without this each
            # waits out Nagle and the client's delayed ACK (~40 ms) and the echo latency is noise.
            "set_tcp_nodelay true",
            f"listener {port} {self.host}",
            f"listener {ws_port} {self.host}",
            "protocol websockets",
            *self._tls_lines(),
            "log_type all",
            "log_timestamp true",
            "log_timestamp_format %Y-%m-%dT%H:%M:%S",
            "connection_messages true",
            # stderr, which the rig appends to mosquitto.log: unlike stdout it is not block-buffered
            # when redirected, so every line is in the file as soon as it is logged; and unlike
            # "log_dest file" it needs no file the broker opens itself, after dropping root, and
            # it also catches errors printed before logging is set up.
            "log_dest stderr",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            # As root mosquitto would switch to user "mosquitto"; changing credentials clears the
            # die-with-parent signal, and the broker would outlive a killed pytest. A loopback
            # broker for one test session gains nothing from dropping privileges.
            lines.append("user root")
        return "\n".join(lines) + "\n"

    def _tls_lines(self) -> list[str]:
        if self.tls is None or self.tls_port is None:
            return []
        # MQTT over TLS; the client checks the certificate, the broker asks for none back.
        return [
            f"listener {self.tls_port} {self.host}",
            "protocol mqtt",
            f"certfile {self.tls.cert_path}",
            f"keyfile {self.tls.key_path}",
        ]

    def _access_lines(self) -> list[str]:
        if self.access is None:
            return ["allow_anonymous true"]
        # Hashes, topic grants and client id bindings only: the passwords are never written here.
        return access_config_lines(self.access, self.workdir, self._binary())
