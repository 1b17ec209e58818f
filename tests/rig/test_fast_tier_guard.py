"""The fast tier's guard refuses processes and the network, naming what was tried, and leaves
loopback alone (tests/rig/fast_tier_guard.py); every test has one tier."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys

import pytest

from tests.rig.fast_tier_guard import guard_fast_tier

TIERS = ("fast", "integration", "mutation")


def test_a_process_is_refused_naming_its_command(monkeypatch: pytest.MonkeyPatch) -> None:
    attempts = guard_fast_tier(monkeypatch)
    with pytest.raises(pytest.fail.Exception, match=r"fast tier: started a process: \['echo', 'mosquitto'\]"):
        subprocess.run(["echo", "mosquitto"], check=False)
    assert attempts == ["started a process: ['echo', 'mosquitto']"]


def test_a_refusal_gets_past_except_exception(monkeypatch: pytest.MonkeyPatch) -> None:
    """The code under test cannot turn the refusal into a quiet fallback."""
    guard_fast_tier(monkeypatch)
    with pytest.raises(pytest.fail.Exception), contextlib.suppress(Exception):
        subprocess.run([sys.executable, "-c", "pass"], check=False)


def test_fork_and_asyncio_processes_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    attempts = guard_fast_tier(monkeypatch)
    with pytest.raises(pytest.fail.Exception, match=r"os\.fork"):
        os.fork()

    async def start() -> None:
        await asyncio.create_subprocess_exec("micropython")

    with pytest.raises(pytest.fail.Exception, match="micropython"):
        asyncio.run(start())
    assert len(attempts) == 2


def test_the_network_is_refused_and_loopback_is_not(monkeypatch: pytest.MonkeyPatch) -> None:
    attempts = guard_fast_tier(monkeypatch)
    with (
        socket.socket() as client,
        pytest.raises(pytest.fail.Exception, match=r"socket connect to \('192\.0\.2\.1', 1883\)"),
    ):
        client.connect(("192.0.2.1", 1883))
    with pytest.raises(pytest.fail.Exception, match=r"looked up 'broker\.example'"):
        socket.create_connection(("broker.example", 1883), timeout=1)
    with pytest.raises(pytest.fail.Exception, match="socket bind"):
        socket.socket().bind(("", 0))
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(server.getsockname(), timeout=1):
            pass
    assert len(attempts) == 3


def test_every_test_of_this_run_has_exactly_one_tier(request: pytest.FixtureRequest) -> None:
    for item in request.session.items:
        tiers = [tier for tier in TIERS if item.get_closest_marker(tier) is not None]
        assert len(tiers) == 1, f"{item.nodeid} has tiers {tiers}"
