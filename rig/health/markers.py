"""Markers through which a test sets the firmware's health-related settings."""

from __future__ import annotations

from typing import Any

import pytest

KEEPALIVE = "keepalive"
MARKERS = (f"{KEEPALIVE}(seconds): the firmware's MQTT keepalive for this test",)


def firmware_overrides(node: pytest.Item) -> dict[str, Any]:
    """The config.json settings this test's markers ask for, as ``RigSession.config_for``
    keywords: the ``keepalive`` marker's."""
    overrides: dict[str, Any] = {}
    keepalive = node.get_closest_marker(KEEPALIVE)
    if keepalive is not None:
        overrides["keepalive"] = int(keepalive.args[0])
    return overrides
