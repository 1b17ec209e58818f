"""The firmware contract (rig-contract.yaml): read, checked with errors naming file and key, and
what it makes of the rig's config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rig.contract import CONTRACT_FILE, NotDeclared, load_contract
from rig.errors import ConfigError
from rig.firmware_config import FirmwareConfig

REPO = Path(__file__).resolve().parents[2]

TUTORIAL_LIKE = """
mqtt:
  echo_topic: foo_topic
  client_id: umqtt_client
  login: false
  will: false
  hello: hello
config:
  file: broker_address.py
  format: python
  loop_period: 1.0
  rig:
    server_ip: broker_host
    server_port: broker_port
console:
  events: []
  idle_line: other operator
  received_print: tuple
"""


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / CONTRACT_FILE).write_text(text)
    return tmp_path


def test_the_rig_firmware_declares_its_topics_config_and_events() -> None:
    contract = load_contract(REPO / "firmware")
    config = FirmwareConfig("10.0.0.1", 1883, "rig-virtual-ab12", "rig/virtual-ab12", loop_period=0.1)
    assert config.contract == contract
    assert (config.echo_topic, config.status_topic) == ("rig/virtual-ab12/echo", "rig/virtual-ab12/status")
    assert config.client_id == "rig-virtual-ab12"
    assert config.watch_filters() == ["rig/virtual-ab12/#"]
    written = json.loads(config.file_bytes())
    assert written["loop_period"] == 0.1  # the rig's request, over the app's default
    assert written["max_held"] == 64 and written["broker_host"] == "10.0.0.1"
    assert contract.emits("boot", "published") and contract.will and contract.login


def test_a_tutorial_like_firmware_gets_a_python_module_and_its_fixed_names(tmp_path: Path) -> None:
    contract = load_contract(write(tmp_path, TUTORIAL_LIKE))
    config = FirmwareConfig("10.0.0.1", 40123, "rig-virtual-ab12", "rig/virtual-ab12", contract=contract)
    assert config.client_id == "umqtt_client"
    assert config.echo_topic == "foo_topic" and config.watch_filters() == ["foo_topic"]
    assert config.file_name == "broker_address.py"
    text = config.file_bytes().decode()
    assert "server_ip = '10.0.0.1'\n" in text and "server_port = 40123\n" in text
    assert "client_id" not in text and "loop_period" not in text  # it reads neither
    assert config.effective_loop_period == 1.0
    with pytest.raises(NotDeclared, match="no status topic"):
        _ = config.status_topic
    with pytest.raises(NotDeclared, match="prints no @rig 'connected' event line"):
        contract.require_events("connected")
    with pytest.raises(NotDeclared, match="no 'max_held' setting"):
        config.setting("max_held")
    with pytest.raises(NotDeclared, match="no 'stats_every' setting"):
        FirmwareConfig("h", 1, "c", "p", contract=contract, app={"stats_every": 10})


@pytest.mark.parametrize(
    ("change", "key", "problem"),
    [
        (("echo_topic: foo_topic", "echo_topic: '{board}/x'"), "mqtt.echo_topic", "placeholder {board}"),
        (("login: false", "login: maybe"), "mqtt.login", "must be true or false"),
        (("will: false", "will: true"), "mqtt.will", "needs a status_topic"),
        (("format: python", "format: ini"), "config.format", "one of json, python"),
        (("server_port: broker_port", "server_port: port"), "config.rig.server_port", "not a value the rig"),
        (("events: []", "events: [booted]"), "console.events", "'booted' is not an @rig event"),
        (("received_print: tuple", "received_print: json"), "console.received_print", "one of tuple, none"),
        (("  loop_period: 1.0\n", ""), "config.loop_period", "missing"),
        (("hello: hello", "helo: hello"), "mqtt.helo", "unknown key"),
    ],
)
def test_bad_input_names_the_file_and_the_key(
    tmp_path: Path, change: tuple[str, str], key: str, problem: str
) -> None:
    assert change[0] in TUTORIAL_LIKE
    write(tmp_path, TUTORIAL_LIKE.replace(change[0], change[1]))
    with pytest.raises(ConfigError) as caught:
        load_contract(tmp_path)
    assert caught.value.source == str(tmp_path / CONTRACT_FILE)
    assert caught.value.key == key
    assert problem in caught.value.problem


def test_a_missing_or_broken_contract_says_which_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=f"{tmp_path / CONTRACT_FILE}: .*no firmware contract"):
        load_contract(tmp_path)
    write(tmp_path, "mqtt: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_contract(tmp_path)
