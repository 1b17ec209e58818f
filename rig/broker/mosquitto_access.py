"""mosquitto's own files for an ``AccessPolicy``: a password file and an ACL file.

The password file is what ``mosquitto_passwd`` writes (mosquitto 2.0's ``$7$`` form: PBKDF2 with
SHA-512, 101 iterations, a 12-byte salt, both in base64), written from Python so that the rig
needs no second binary and no password ever appears on a command line. It holds hashes only.

The ACL grants each user ``readwrite`` on its prefixes and nothing else; a user without a line
gets nothing, and anonymous clients are refused by ``allow_anonymous false`` in the config.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from rig.atomic import write_atomically
from rig.broker.access import AccessPolicy, Login

# As mosquitto_passwd 2.0 writes them (src/password_mosq.h: PW_DEFAULT_ITERATIONS, SALT_LEN).
ITERATIONS = 101
SALT_BYTES = 12


def password_line(login: Login, salt: bytes | None = None) -> str:
    """One line of a mosquitto password file for ``login``."""
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", login.password.encode(), salt, ITERATIONS)
    b64 = base64.b64encode
    return f"{login.user}:$7${ITERATIONS}${b64(salt).decode()}${b64(digest).decode()}"


def password_file_text(policy: AccessPolicy) -> str:
    return "".join(password_line(a.login) + "\n" for a in policy.accounts)


def acl_text(policy: AccessPolicy) -> str:
    lines = ["# Written by rig.broker.mosquitto_access: each user its own prefixes, nothing else."]
    for account in policy.accounts:
        lines.append(f"\nuser {account.login.user}")
        lines += [f"topic readwrite {pattern}" for pattern in account.patterns]
    return "\n".join(lines) + "\n"


def write_access_files(policy: AccessPolicy, workdir: Path) -> tuple[Path, Path]:
    """Write ``passwd`` and ``acl`` into ``workdir``; return their paths."""
    passwd, acl = workdir / "passwd", workdir / "acl"
    write_atomically(passwd, password_file_text(policy).encode(), mode=0o600)
    write_atomically(acl, acl_text(policy).encode())
    return passwd, acl
