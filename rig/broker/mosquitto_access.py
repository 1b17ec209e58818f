"""mosquitto's own files for an ``AccessPolicy``: a password file and an ACL file.

The password file is what ``mosquitto_passwd`` writes (mosquitto 2.0's ``$7$`` form: PBKDF2 with
SHA-512, 101 iterations, a 12-byte salt, both in base64), written from Python so that the rig
needs no second binary and no password ever appears on a command line. It holds hashes only.

The ACL grants each user ``readwrite`` on its prefixes and nothing else; a user without a line
gets nothing, and anonymous clients are refused by ``allow_anonymous false`` in the config.

Client ids are bound to accounts by mosquitto's dynamic security plugin
(``mosquitto_dynamic_security.so``, shipped in Debian's mosquitto package), loaded beside the two
files. Its client records may carry a ``clientid`` the client must connect with: a CONNECT with
that user name and another id gets CONNACK 5 (not authorized) and mosquitto closes the
connection before it looks up that id's session, so the session's owner stays connected. Why this
and not the others mosquitto 2.0 has: ``clientid_prefixes`` is one prefix for all users, so it
cannot tell board X's id from board Y's; ACL ``pattern`` lines with ``%c``/``%u`` only filter
topics, and the takeover (Y kicked off, its session given to X) happens at the CONNECT, before
any topic; an auth plugin of our own would be C to compile against headers Debian ships only in
a dev package.

The plugin holds no password and no topic grant: its clients name a user and a client id only,
and its default access is "no opinion" for everything. On each CONNECT it refuses a bound user
with another client id and otherwise defers; mosquitto then asks the password file, which decides
as before; on each topic check it defers to the ACL file (default access false means "defer" in
mosquitto 2.0's plugin, true would grant every topic to everyone). Its control topic
(``$CONTROL/dynamic-security/#``, through which a client could rewrite the bindings) is in no
user's ACL, so no one may publish there.
"""

from __future__ import annotations

import base64
import glob
import hashlib
import json
import os
import shutil
from pathlib import Path

from rig.atomic import write_atomically
from rig.broker.access import AccessPolicy, Login
from rig.errors import BrokerError

# As mosquitto_passwd 2.0 writes them (src/password_mosq.h: PW_DEFAULT_ITERATIONS, SALT_LEN).
ITERATIONS = 101
SALT_BYTES = 12

DYNSEC_PLUGIN = "mosquitto_dynamic_security.so"
# Where packages put it: Debian's multiarch folder, other Linux and Homebrew's lib folders.
_PLUGIN_DIRS = ("/usr/lib/*-linux-gnu", "/usr/lib", "/usr/lib64", "/usr/local/lib", "/opt/homebrew/lib")
# "No opinion" on every topic check: the ACL file decides (see the module docstring).
_DEFER_ALL = {
    "publishClientSend": False,
    "publishClientReceive": False,
    "subscribe": False,
    "unsubscribe": False,
}


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


def client_id_bindings_text(policy: AccessPolicy) -> str:
    """The dynamic security plugin's config: one client per bound account, user and client id only."""
    clients = [{"username": user, "clientid": cid} for user, cid in policy.bound_client_ids().items()]
    document = {"defaultACLAccess": _DEFER_ALL, "clients": clients, "groups": [], "roles": []}
    return json.dumps(document, indent=2) + "\n"


def find_dynsec_plugin(mosquitto: str | None = None) -> Path:
    """The dynamic security plugin's path; BrokerError naming what was searched if it is absent.

    Beside the broker's own ``lib`` folder first (a mosquitto built into a prefix), then where
    packages put it."""
    dirs: list[str] = []
    binary = shutil.which(mosquitto) if mosquitto else None
    if binary:
        prefix = Path(binary).resolve().parent.parent
        dirs += [str(prefix / "lib"), str(prefix / "lib" / "*-linux-gnu")]
    dirs += list(_PLUGIN_DIRS)
    for pattern in dirs:
        for found in sorted(glob.glob(os.path.join(pattern, DYNSEC_PLUGIN))):
            return Path(found)
    raise BrokerError(
        f"mosquitto's {DYNSEC_PLUGIN} is not installed (looked in {', '.join(dirs)}): the rig needs it "
        "to bind each board's account to its client id; it ships with mosquitto 2.0 "
        "(Debian/Ubuntu: apt install mosquitto)"
    )


def write_access_files(policy: AccessPolicy, workdir: Path) -> tuple[Path, Path]:
    """Write ``passwd`` and ``acl`` into ``workdir``; return their paths."""
    passwd, acl = workdir / "passwd", workdir / "acl"
    write_atomically(passwd, password_file_text(policy).encode(), mode=0o600)
    write_atomically(acl, acl_text(policy).encode())
    return passwd, acl


def access_config_lines(policy: AccessPolicy, workdir: Path, mosquitto: str | None = None) -> list[str]:
    """mosquitto.conf's lines for ``policy``, with the files they name written into ``workdir``:
    no anonymous clients, the password and ACL files, and the client id bindings.

    mosquitto asks its plugins before its password file, whatever their order here (the file
    alone would admit a right password with any client id)."""
    passwd, acl = write_access_files(policy, workdir)
    bindings = workdir / "client-ids.json"
    write_atomically(bindings, client_id_bindings_text(policy).encode())
    return [
        "allow_anonymous false",
        f"plugin {find_dynsec_plugin(mosquitto)}",
        f"plugin_opt_config_file {bindings}",
        f"password_file {passwd}",
        f"acl_file {acl}",
    ]
