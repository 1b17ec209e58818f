"""The inventory's per-kind checks read the kind's traits (``KIND_TRAITS``), not its name: a new
kind is one row in that table. Shown by giving an existing kind other traits."""

from __future__ import annotations

from pathlib import Path

import pytest

from rig.inventory import InventoryError, load_inventory
from rig.inventory.spec import KIND_TRAITS, KindTraits

STARTED_HERE = KindTraits(started_here=True, networked=False)
FOUND_ON_A_PORT = KindTraits(started_here=False, networked=True)


def load_error(tmp_path: Path, text: str) -> InventoryError:
    path = tmp_path / "boards.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InventoryError) as caught:
        load_inventory(path, env={})
    return caught.value


def test_a_kind_started_here_must_not_have_a_match(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = "boards:\n  - name: g\n    kind: generic\n    match: {port: /dev/ttyACM0}\n"
    path = tmp_path / "boards.yaml"
    path.write_text(text, encoding="utf-8")
    assert load_inventory(path, env={}).get("g").match.port == "/dev/ttyACM0"
    monkeypatch.setitem(KIND_TRAITS, "generic", STARTED_HERE)
    error = load_error(tmp_path, text)
    assert (error.line, error.key) == (4, "boards[0].match")
    assert "a generic board must not have match: it is started here" in str(error)


def test_a_kind_started_here_needs_no_match(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = "boards:\n  - name: g\n    kind: generic\n"
    assert "needs a non-empty match" in str(load_error(tmp_path, text))
    monkeypatch.setitem(KIND_TRAITS, "generic", STARTED_HERE)
    (tmp_path / "boards.yaml").write_text(text, encoding="utf-8")
    assert load_inventory(tmp_path / "boards.yaml", env={}).get("g").match.is_empty


def test_wifi_settings_follow_the_networked_trait(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (
        "defaults:\n  network: {wifi_ssid: lab, wifi_password: '${RIG_WIFI_PASSWORD}'}\n"
        "boards:\n  - name: v\n    kind: virtual\n    network: {wifi_ssid: mine}\n"
    )
    error = load_error(tmp_path, text)
    assert (error.line, error.key) == (6, "boards[0].network.wifi_ssid")
    assert "a virtual board has no Wi-Fi" in str(error)
    # A virtual kind that joined a network would take the Wi-Fi settings, its own and inherited.
    monkeypatch.setitem(KIND_TRAITS, "virtual", KindTraits(started_here=True, networked=True))
    (tmp_path / "boards.yaml").write_text(text, encoding="utf-8")
    inventory = load_inventory(tmp_path / "boards.yaml", env={})
    assert inventory.get("v").network.wifi_ssid == "mine"
    assert inventory.missing_env("v") == ["RIG_WIFI_PASSWORD"]


def test_a_board_that_is_not_networked_inherits_no_wifi(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = (
        "defaults:\n  network: {wifi_ssid: lab, wifi_password: '${RIG_WIFI_PASSWORD}'}\n"
        "boards:\n  - name: e\n    kind: esp32\n    match: {port: /dev/ttyUSB0}\n"
    )
    path = tmp_path / "boards.yaml"
    path.write_text(text, encoding="utf-8")
    assert load_inventory(path, env={}).missing_env("e") == ["RIG_WIFI_PASSWORD"]
    monkeypatch.setitem(KIND_TRAITS, "esp32", KindTraits(started_here=False, networked=False))
    board = load_inventory(path, env={}).get("e")
    assert board.network.wifi_ssid is None and board.network.wifi_password is None
