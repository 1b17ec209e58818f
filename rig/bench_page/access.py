"""Who may use the bench page: the ``Host`` a request names, the ``Origin`` it comes from, and
the run's token.

The page can inject messages, cut the board's power and read the console and the MQTT history,
so three checks stand in front of it:

- **Host**: only the names and addresses the server is bound to, with its port. A web page on
  ``rebind.example:8420`` whose name re-resolves to 127.0.0.1 (DNS rebinding) reaches the socket
  but names its own host, and is refused (421).
- **Origin**: a request that says where it comes from must come from one of those hosts (403).
  It is compared with the allowed hosts, never with the request's own ``Host``: both come from the
  same request.
- **Token**: a random token per run, in the URL the command prints. The first visit with it sets
  a cookie (HttpOnly, SameSite=Strict) and redirects to the clean URL; every other request needs
  the cookie or ``Authorization: Bearer TOKEN`` (401 without, 403 with a wrong one). Another
  local user, or a web page, does not know it.

The cookie is named after the port: a browser sends a host's cookies to all its ports, and two
pages open at once (``rig up`` and ``rig page``) must not overwrite each other's.

This module only decides; ``rig.bench_page.server`` answers.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import socket
from collections.abc import Iterable

# The query parameter of the printed URL that carries the token.
TOKEN_PARAM = "token"

_LOOPBACK_NAMES = ("localhost",)


class BindRefused(ValueError):
    """A ``--page-host`` that would open the page beyond this machine, without ``--page-expose``."""


def new_token() -> str:
    return secrets.token_urlsafe(32)


def is_loopback(host: str) -> bool:
    """Whether every address ``host`` names is this machine's loopback (127.0.0.0/8, ::1)."""
    if not host:  # every address of the machine, as a wildcard
        return False
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        found = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return False
    return bool(found) and all(
        ipaddress.ip_address(str(entry[4][0]).split("%")[0]).is_loopback for entry in found
    )


def exposure_warning(host: str, port: int) -> str:
    """What ``--page-expose`` opens, said before the page listens."""
    return (
        f"--page-expose: the bench page listens on {host} (port {port}), beyond this machine: "
        "anyone on the network who has the page's token (it is in the URL printed below) can read "
        "the board's console and its MQTT history, inject messages as the run's injector, "
        "soft-reset or interrupt the board and cut its power. The page is plain HTTP: the token "
        "and all of it cross the network unencrypted."
    )


def check_bind(host: str, expose: bool) -> None:
    """Raises ``BindRefused`` for a non-loopback ``host`` unless ``expose`` says the user means it."""
    if not expose and not is_loopback(host):
        raise BindRefused(
            f"{host!r} is not a loopback address: the page would let anyone on the network read "
            "the console and the MQTT history, inject messages and cut the board's power. Give "
            "--page-expose as well if that is meant, or use 127.0.0.1 (the default)"
        )


def _with_port(name: str, port: int) -> set[str]:
    shown = f"[{name}]" if ":" in name else name
    hosts = {f"{shown}:{port}".lower()}
    if port == 80:  # a browser leaves the default port out of Host
        hosts.add(shown.lower())
    return hosts


class PageAccess:
    """The checks for one listening server: made once it listens, from the addresses it is
    bound to (``bound``: socket addresses' hosts), its ``port`` and the name it was asked to
    listen on (``requested``: kept when it is a name, e.g. ``localhost``)."""

    def __init__(self, bound: Iterable[str], port: int, requested: str, token: str) -> None:
        self.token = token
        self.cookie = f"rig_bench_{port}"
        self.port = port
        names: set[str] = set()
        # A wildcard bind answers on every address of this machine: any of them may be named.
        self.any_local_address = False
        for address in bound:
            ip = ipaddress.ip_address(address.split("%")[0])
            if ip.is_unspecified:
                self.any_local_address = True
                names.update(("127.0.0.1", socket.gethostname(), socket.getfqdn(), *_LOOPBACK_NAMES))
                if ip.version == 6:
                    names.add("::1")
            else:
                names.add(str(ip))
                if ip.is_loopback:
                    names.update(_LOOPBACK_NAMES)
                else:
                    names.update((socket.gethostname(), socket.getfqdn()))
        try:
            ipaddress.ip_address(requested.strip("[]"))
        except ValueError:
            if requested:
                names.add(requested)
        self.hosts: set[str] = set()
        for name in names:
            self.hosts |= _with_port(name, port)
        self._local: dict[str, bool] = {}

    def host_allowed(self, host: str | None) -> bool:
        """Whether a request's ``Host`` names this server (see the module docstring)."""
        if host is None:
            return False
        host = host.lower()
        if host in self.hosts:
            return True
        if not self.any_local_address:
            return False
        # An address literal of this machine: a rebinding page names a domain, never these.
        literal, _, port = host.rpartition(":")
        if port != str(self.port):
            return False
        return self._is_local_address(literal.strip("[]"))

    def origin_allowed(self, origin: str) -> bool:
        scheme, _, host = origin.partition("://")
        return scheme == "http" and self.host_allowed(host)

    def token_ok(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.token.encode())

    def bearer(self, authorization: str | None) -> str | None:
        if authorization is None:
            return None
        scheme, _, value = authorization.partition(" ")
        return value.strip() if scheme.lower() == "bearer" else None

    def _is_local_address(self, literal: str) -> bool:
        if literal not in self._local:
            if len(self._local) > 256:  # names given by strangers: keep the memo bounded
                self._local.clear()
            self._local[literal] = _binds(literal)
        return self._local[literal]


def _binds(literal: str) -> bool:
    """Whether ``literal`` is an address of this machine: only those can be bound to."""
    try:
        ip = ipaddress.ip_address(literal)
    except ValueError:
        return False
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((str(ip), 0))
        except OSError:
            return False
    return True
