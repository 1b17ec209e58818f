"""The fast tier's guard: no process, no network, so no board and no broker.

Every way Python starts a process ends in one of the functions patched here (``subprocess`` and
``asyncio`` in ``Popen._execute_child``, ``multiprocessing`` in ``_posixsubprocess.fork_exec`` or
``os.fork``, ``pty`` in ``os.forkpty``); every connection in ``socket.socket.connect`` or
``bind``. A refusal raises ``pytest.fail``'s exception, a ``BaseException``, so that no
``except Exception`` in the code under test can turn it into a quiet fallback.

Loopback stays open: an in-process fake on 127.0.0.1 (a scripted broker, a page server) is a unit
test's tool, and nothing outside the process can listen there for a fast test, which starts none.
"""

from __future__ import annotations

import _posixsubprocess
import ipaddress
import os
import socket
import subprocess
from typing import Any

import pytest

HELP = (
    "a test that needs a process, a board, a broker or the network belongs to the integration "
    "tier: list it in STARTS_PROCESSES (conftest.py at the root) or mark it integration"
)
_LOCAL_NAMES = frozenset({"localhost", "ip6-localhost"})


def _is_loopback(host: object) -> bool:
    if not isinstance(host, str):
        return True  # AF_UNIX paths (bytes) and abstract sockets: in-process or the local kernel
    if host in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def guard_fast_tier(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Refuse, until ``monkeypatch`` is undone, every process start and every connection or bind
    past loopback; returns the list of refused attempts, one line each."""
    attempts: list[str] = []

    def refuse(what: str) -> Any:
        attempts.append(what)
        pytest.fail(f"fast tier: {what}; {HELP}", pytrace=True)

    def execute_child(self: subprocess.Popen[Any], args: Any, *rest: Any, **kw: Any) -> None:
        refuse(f"started a process: {args!r}")

    def process(name: str) -> Any:
        return lambda *args, **kw: refuse(f"started a process: {name}{args[:2]!r}")

    monkeypatch.setattr(subprocess.Popen, "_execute_child", execute_child)
    monkeypatch.setattr(_posixsubprocess, "fork_exec", process("_posixsubprocess.fork_exec"))
    for name in ("fork", "forkpty", "posix_spawn", "posix_spawnp", "system", "execv", "execve"):
        if hasattr(os, name):
            monkeypatch.setattr(os, name, process(f"os.{name}"))

    def checked(name: str, original: Any) -> Any:
        def call(sock: socket.socket, address: Any, *args: Any) -> Any:
            host = address[0] if isinstance(address, tuple) else address
            if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(host):
                refuse(f"socket {name} to {address!r}")
            return original(sock, address, *args)

        return call

    for name in ("connect", "connect_ex", "bind"):
        monkeypatch.setattr(socket.socket, name, checked(name, getattr(socket.socket, name)))
    resolve = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kw: Any) -> Any:
        if host is not None and not _is_loopback(host.decode() if isinstance(host, bytes) else host):
            refuse(f"looked up {host!r}, to reach it")
        return resolve(host, *args, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return attempts
