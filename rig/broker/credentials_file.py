"""The file where a person finds the locked-down broker's accounts: readable by its owner only.

``rig broker`` (and anything else that runs the embedded broker for a person rather than a
test) writes it, so that a bench user can still connect with ``mosquitto_sub`` (``rig up`` prints
the command, ``subscribe_command``) or a web client,
and ``rig deploy --broker-credentials FILE`` gives a board its own account from it. It lives in a
private folder outside any artifacts (``$XDG_RUNTIME_DIR``, else the temp folder; mode 0700, the
file 0600), and is deleted when the broker stops.

Format (JSON)::

    {"mqtt": "mqtt://HOST:PORT", "websocket": "ws://HOST:WS/mqtt", "tls": "mqtts://HOST:TLS" | null,
     "ca_file": PATH | null, "server_name": NAME | null,
     "accounts": {ROLE: {"user": U, "password": P, "topics": ["PREFIX/#", ...]}}}
"""

from __future__ import annotations

import json
import os
import shlex
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rig import shared_folder
from rig.atomic import write_atomically
from rig.broker.access import Login
from rig.broker.base import Broker
from rig.errors import ConfigError


def private_folder() -> Path:
    """This user's private folder for broker credentials (created 0700). Its name is fixed, so
    another user may have made it first, to read the passwords: one that is not this user's
    alone raises ``UntrustedFolder`` (``rig.shared_folder``) before anything is written there."""
    base = Path(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir())
    return shared_folder.private_folder(base / f"micropython-mqtt-rig-{os.getuid()}")


def write_credentials(broker: Broker, path: Path | None = None) -> Path:
    """Write ``broker``'s accounts and addresses (mode 0600); returns the path. The broker must
    be running (its ports are chosen) and have an ``AccessPolicy``."""
    if broker.access is None:
        raise ValueError("the broker admits anonymous clients: it has no credentials to write")
    if path is None:
        path = private_folder() / f"broker-{broker.port}.json"
    tls = broker.tls
    document = {
        "mqtt": f"mqtt://{broker.host}:{broker.port}",
        "websocket": f"ws://{broker.host}:{broker.ws_port}/mqtt" if broker.ws_port is not None else None,
        "tls": f"mqtts://{broker.host}:{broker.tls_port}" if broker.tls_port is not None else None,
        "ca_file": str(tls.ca_path) if tls is not None else None,
        "server_name": tls.server_name if tls is not None else None,
        "accounts": {
            a.role: {"user": a.login.user, "password": a.login.password, "topics": list(a.patterns)}
            for a in broker.access.accounts
        },
    }
    write_atomically(path, json.dumps(document, indent=1) + "\n", mode=0o600)
    return path


@dataclass(frozen=True)
class BrokerCredentials:
    """What ``read_credentials`` found: the broker's address and one account."""

    host: str
    port: int
    login: Login
    topics: tuple[str, ...]


def read_credentials(path: Path, role: str) -> BrokerCredentials:
    """The address and the ``role`` account of a credentials file; ConfigError naming the file
    and the key when it is missing or malformed (never a password)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(str(path), "file", f"cannot be read: {e.strerror or e}") from None
    except ValueError as e:
        raise ConfigError(str(path), "file", f"is not JSON: {e}") from None
    try:
        url = str(document["mqtt"])
        host, port = url.removeprefix("mqtt://").rsplit(":", 1)
        account = document["accounts"][role]
        return BrokerCredentials(
            host, int(port), Login(str(account["user"]), str(account["password"])), tuple(account["topics"])
        )
    except KeyError as e:
        known = ", ".join(sorted(document.get("accounts", {}))) if isinstance(document, dict) else ""
        raise ConfigError(str(path), str(e.args[0]), f"is missing (accounts in the file: {known})") from None
    except (ValueError, TypeError, AttributeError) as e:
        raise ConfigError(str(path), "mqtt", f"is not mqtt://HOST:PORT ({e})") from None


def subscribe_command(
    path: Path | None, role: str, topics: Sequence[str], *, address: tuple[str, int] | None = None
) -> str:
    """A ``mosquitto_sub`` command line that a person pastes into a shell to watch ``topics`` as
    ``role`` (the host's account may read every topic of the bench's boards, and no other). The
    address and the user come from the credentials file at ``path``; the password is read from
    it when the command runs, by the ``python3`` the shell finds, so that it is never printed.
    Without a file (a broker that takes anonymous clients), ``address`` is the broker's and no
    login is given."""
    if path is None:
        if address is None:
            raise ValueError("a subscribe command needs the credentials file or the broker's address")
        host, port = address
        login = ""
    else:
        given = read_credentials(path, role)
        host, port = given.host, given.port
        # Double quotes in the Python, so that the whole of it is one single-quoted shell word.
        field = f"[{json.dumps('accounts')}][{json.dumps(role)}][{json.dumps('password')}]"
        reader = f"import json,sys; print(json.load(open(sys.argv[1])){field})"
        password = f"$(python3 -c {shlex.quote(reader)} {shlex.quote(str(path))})"
        login = f' -u {shlex.quote(given.login.user)} -P "{password}"'
    filters = "".join(f" -t {shlex.quote(topic)}" for topic in topics)
    return f"mosquitto_sub -h {shlex.quote(host)} -p {port}{login}{filters} -v"
