"""Refusing the network inside a test, so that "needs no network" is proved, not assumed."""

from __future__ import annotations

import socket
from typing import Any

import pytest


def refuse_network(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Record (and refuse with ``OSError``) every later attempt to resolve a name or open a
    connection; the list returned is the attempts, for the test to assert empty."""
    attempts: list[object] = []

    def refuse(*args: object, **kwargs: object) -> Any:
        attempts.append(args)
        raise OSError("network access attempted in a test that refuses the network")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    return attempts
