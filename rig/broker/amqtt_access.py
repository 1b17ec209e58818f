"""An ``AccessPolicy`` as amqtt's plugins take it: a password file of hashes, and topic ACLs.

The host (``rig.broker.amqtt.AmqttBroker``) writes the password file into the broker's workdir
and puts the ACLs into the broker's config; the plugins in the broker child
(``rig.broker.amqtt_auth``) read them back. The child never sees a password, only what it needs
to check one: the file is mosquitto's own (``rig.broker.mosquitto_access``: PBKDF2-SHA512, salted,
``user:$7$ITERATIONS$SALT$HASH``), so both brokers hold the same kind of hash, and the workdir,
an artifact folder, holds no plaintext password.

Why not amqtt's ``FileAuthPlugin``: it takes Argon2 (or bcrypt, or the deprecated sha512-crypt)
hashes only, and verifies them synchronously on the broker's event loop: about 130 ms per CONNECT
on the bench, during which every other client of the broker waits. The rig's passwords are 128
random bits, so a cheap salted hash is as good as a slow one against guessing.

Client ids: beside the password file, ``amqtt-client-ids.json`` maps each bound user to the one
client id it may connect with (``AccessPolicy.bound_client_ids``); the auth plugin reads it from
the password file's folder, so the broker's config names one file, as before.

This module imports nothing of amqtt: the host uses it without amqtt installed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from pathlib import Path

from rig.atomic import write_atomically
from rig.broker.access import AccessPolicy
from rig.broker.mosquitto_access import password_file_text

PASSWORD_FILE = "amqtt-passwd"
CLIENT_ID_FILE = "amqtt-client-ids.json"
# mosquitto_passwd's tag for PBKDF2 with SHA-512 (the only form mosquitto_access writes).
_PBKDF2_SHA512 = "7"


class BadPasswordFile(ValueError):
    """A password file line the broker cannot use: names the file and the line number, never
    the line (it holds a hash)."""


@dataclass(frozen=True)
class PasswordHash:
    """One user's salted PBKDF2-SHA512 hash, as a line of a mosquitto password file holds it."""

    iterations: int
    salt: bytes
    digest: bytes = field(repr=False)

    @classmethod
    def parse(cls, text: str) -> PasswordHash:
        """``$7$ITERATIONS$SALT$HASH`` (base64 salt and hash); ValueError if it is not that."""
        parts = text.split("$")
        if len(parts) != 5 or parts[0] != "" or parts[1] != _PBKDF2_SHA512:
            raise ValueError("not a $7$ (PBKDF2-SHA512) hash")
        try:
            iterations = int(parts[2])
            salt = base64.b64decode(parts[3], validate=True)
            digest = base64.b64decode(parts[4], validate=True)
        except (ValueError, binascii.Error) as e:
            raise ValueError(f"malformed $7$ hash: {type(e).__name__}") from e
        if iterations < 1 or not salt or len(digest) != hashlib.sha512().digest_size:
            raise ValueError("malformed $7$ hash: bad iterations, salt or digest size")
        return cls(iterations, salt, digest)

    def matches(self, password: str) -> bool:
        candidate = hashlib.pbkdf2_hmac("sha512", password.encode(), self.salt, self.iterations)
        return hmac.compare_digest(candidate, self.digest)


def read_password_file(path: Path) -> dict[str, PasswordHash]:
    """The hashes of ``path`` by user name; BadPasswordFile for a line that is not one."""
    hashes: dict[str, PasswordHash] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        user, sep, text = line.partition(":")
        try:
            if not sep or not user:
                raise ValueError("no user name before ':'")
            hashes[user] = PasswordHash.parse(text)
        except ValueError as e:
            raise BadPasswordFile(f"{path}:{number}: {e}") from None
    return hashes


def write_password_file(policy: AccessPolicy, workdir: Path) -> Path:
    """Write the hashes of ``policy``'s logins into ``workdir`` (mode 0600), and beside them the
    client id bindings (``CLIENT_ID_FILE``); return the password file's path."""
    path = workdir / PASSWORD_FILE
    write_atomically(path, password_file_text(policy).encode(), mode=0o600)
    bindings = json.dumps(policy.bound_client_ids(), indent=2, sort_keys=True) + "\n"
    write_atomically(client_id_file(path), bindings.encode())
    return path


def client_id_file(password_file: Path) -> Path:
    """Where the client id bindings of ``password_file`` are."""
    return password_file.with_name(CLIENT_ID_FILE)


def read_client_ids(path: Path) -> dict[str, str]:
    """User -> the one client id it may use; BadPasswordFile naming ``path`` if it is not that."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise BadPasswordFile(f"{path}: {type(e).__name__}: {e}") from None
    if not isinstance(document, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in document.items()
    ):
        raise BadPasswordFile(f"{path}: not an object of user name -> client id strings")
    return document


def topic_acl(policy: AccessPolicy) -> dict[str, list[str]]:
    """Per user, the topic filters amqtt's ACL plugin grants: each prefix and ``PREFIX/#``.

    The bare prefix too: amqtt's matcher does not let ``PREFIX/#`` cover ``PREFIX`` itself,
    which MQTT's wildcard rules (and mosquitto's ACL) do."""
    return {a.login.user: [form for p in a.prefixes for form in (p, f"{p}/#")] for a in policy.accounts}
