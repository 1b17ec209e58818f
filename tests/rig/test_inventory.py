"""boards.yaml: loading, validation with file:line:key messages, defaults, and ${VAR} secrets."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from rig.errors import ConfigError
from rig.inventory import (
    Inventory,
    InventoryError,
    MissingVariable,
    Secret,
    default_inventory_path,
    load_inventory,
)

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "boards.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> Inventory:
    return load_inventory(write(tmp_path, text), env={} if env is None else env)


def problem(tmp_path: Path, text: str, line: int | None, key: str, env: dict[str, str] | None = None) -> str:
    """Load a bad inventory; check the error names file, line and key; return the problem part."""
    path = write(tmp_path, text)
    with pytest.raises(InventoryError) as caught:
        load_inventory(path, env={} if env is None else env)
    error = caught.value
    assert isinstance(error, ConfigError)
    where = f"{path}:{line}" if line is not None else str(path)
    assert str(error).startswith(f"{where}: {key}: "), str(error)
    assert (error.path, error.line, error.key) == (path, line, key)
    return error.problem


USB = """
boards:
  - name: bit
    kind: esp32
    match: {vid: 0x10c4, pid: 0xea60, serial_number: "0001"}
"""


# -- the committed inventory ---------------------------------------------------------------------


def test_committed_inventory_loads_with_an_empty_environment() -> None:
    inventory = load_inventory(REPO / "boards.yaml", env={})
    assert "virtual" in inventory.names()
    board = inventory.select("virtual")
    assert board.kind == "virtual"
    assert board.match.is_empty
    assert board.origin.startswith(f"{REPO / 'boards.yaml'}:")
    assert inventory.check() == []


def test_committed_usb_example_is_valid_once_uncommented(tmp_path: Path) -> None:
    text = (REPO / "boards.yaml").read_text(encoding="utf-8")
    # The example is the commented block starting at "- name:"; uncommenting means dropping "# ".
    uncommented = re.sub(r"(?m)^  # (- name:|  )", r"  \1", text)
    path = tmp_path / "boards.yaml"
    path.write_text(uncommented, encoding="utf-8")
    inventory = load_inventory(path, env={"RIG_WIFI_SSID": "lab", "RIG_WIFI_PASSWORD": "pw"})
    usb = [board for board in inventory.boards if board.kind != "virtual"]
    assert len(usb) == 1
    board = usb[0]
    assert (board.match.vid, board.match.pid, board.match.serial_number) == (0x10C4, 0xEA60, "0001")
    assert board.tags == {"wifi"}
    assert board.network.wifi_password == Secret("RIG_WIFI_PASSWORD")
    assert board.network.broker_host == "auto"
    assert inventory.select(board.name) is board


# -- a good inventory ----------------------------------------------------------------------------


def test_boards_in_file_order_with_origin(tmp_path: Path) -> None:
    inventory = load(
        tmp_path,
        """
        boards:
          - name: virtual
            kind: virtual
          - name: b.2_x-y
            kind: generic
            match: {port: /dev/ttyUSB*}
            baudrate: 9600
        """,
    )
    assert inventory.names() == ["virtual", "b.2_x-y"]
    assert [board.origin for board in inventory.boards] == [f"{inventory.path}:2", f"{inventory.path}:4"]
    generic = inventory.get("b.2_x-y")
    assert (generic.kind, generic.match.port, generic.baudrate) == ("generic", "/dev/ttyUSB*", 9600)
    assert inventory.get("virtual").baudrate == 115200


@pytest.mark.parametrize(
    ("written", "value"),
    [("0x10c4", 0x10C4), ('"0x10C4"', 0x10C4), ('"10c4"', 0x10C4), ("10c4", 0x10C4), ('"7523"', 0x7523)],
)
def test_usb_ids_are_hex(tmp_path: Path, written: str, value: int) -> None:
    inventory = load(tmp_path, USB.replace("0x10c4", written).replace("0xea60", written))
    match = inventory.get("bit").match
    assert (match.vid, match.pid) == (value, value)


def test_serial_number_is_taken_as_written(tmp_path: Path) -> None:
    # Plain YAML would read 0001 as the integer 1.
    inventory = load(tmp_path, USB.replace('"0001"', "0001"))
    assert inventory.get("bit").match.serial_number == "0001"


def test_url_match(tmp_path: Path) -> None:
    inventory = load(
        tmp_path,
        """
        boards:
          - name: remote
            kind: esp32
            match: {url: "rfc2217://lab-pi:4000"}
        """,
    )
    assert inventory.get("remote").match.url == "rfc2217://lab-pi:4000"


def test_defaults_merge_under_every_board(tmp_path: Path) -> None:
    inventory = load(
        tmp_path,
        """
        defaults:
          kind: esp32
          baudrate: 460800
          tags: [wifi]
          network:
            wifi_ssid: lab-net
            broker_host: auto
            broker_user: rig
        boards:
          - name: a
            match: {serial_number: A}
          - name: b
            kind: generic
            match: {serial_number: B}
            tags: [ble, slow]
            baudrate: 115200
            network:
              broker_host: 10.0.0.2
          - name: virtual
            kind: virtual
            tags: []
        """,
    )
    a, b, virtual = inventory.boards
    assert (a.kind, a.baudrate, a.tags) == ("esp32", 460800, frozenset({"wifi"}))
    assert (a.network.wifi_ssid, a.network.broker_host, a.network.broker_user) == ("lab-net", "auto", "rig")
    # Maps merge key by key; a list on the board replaces the default one.
    assert (b.kind, b.baudrate, b.tags) == ("generic", 115200, frozenset({"ble", "slow"}))
    assert (b.network.wifi_ssid, b.network.broker_host, b.network.broker_user) == (
        "lab-net",
        "10.0.0.2",
        "rig",
    )
    # The virtual board takes no Wi-Fi settings, the rest it does; an empty list empties the tags.
    assert (virtual.network.wifi_ssid, virtual.network.broker_user) == (None, "rig")
    assert (virtual.baudrate, virtual.tags) == (460800, frozenset())
    assert inventory.with_tags("wifi") == [a]
    assert inventory.with_tags("ble", "slow") == [b]
    assert inventory.with_tags("ble", "wifi") == []


def test_empty_boards_list(tmp_path: Path) -> None:
    assert load(tmp_path, "boards: []\n").boards == []


# -- secrets -------------------------------------------------------------------------------------

SECRET_BENCH = """
defaults:
  kind: esp32
  network:
    wifi_ssid: ${RIG_WIFI_SSID}
    wifi_password: ${RIG_WIFI_PASSWORD}
    broker_host: auto
boards:
  - name: virtual
    kind: virtual
  - name: one
    match: {serial_number: "1"}
  - name: two
    match: {serial_number: "2"}
    network:
      broker_user: rig
      broker_password: ${RIG_BROKER_PASSWORD}
"""


def test_secrets_come_from_the_environment(tmp_path: Path) -> None:
    env = {"RIG_WIFI_SSID": "lab", "RIG_WIFI_PASSWORD": "wpw", "RIG_BROKER_PASSWORD": "bpw"}
    inventory = load(tmp_path, SECRET_BENCH, env)
    two = inventory.select("two")
    assert isinstance(two.network.wifi_ssid, Secret)
    assert two.network.wifi_ssid.reveal() == "lab"
    assert two.network.wifi_password is not None and two.network.wifi_password.reveal() == "wpw"
    assert two.network.broker_password is not None and two.network.broker_password.reveal() == "bpw"
    assert two.network.broker_user == "rig"
    assert {secret.env for secret in two.secrets()} == {
        "RIG_WIFI_SSID",
        "RIG_WIFI_PASSWORD",
        "RIG_BROKER_PASSWORD",
    }
    assert inventory.check() == []


def test_unset_variables_only_fail_the_board_that_is_selected(tmp_path: Path) -> None:
    inventory = load(tmp_path, SECRET_BENCH, {"RIG_WIFI_SSID": "lab", "RIG_WIFI_PASSWORD": "wpw"})
    assert inventory.select("virtual").kind == "virtual"
    assert inventory.select("one").name == "one"
    assert inventory.missing_env("one") == []
    assert inventory.missing_env("two") == ["RIG_BROKER_PASSWORD"]
    with pytest.raises(MissingVariable) as caught:
        inventory.select("two")
    assert str(caught.value) == (
        f"{inventory.path}:16: boards[2].network.broker_password: "
        "environment variable RIG_BROKER_PASSWORD is not set"
    )
    assert caught.value.variable == "RIG_BROKER_PASSWORD"
    # get() does not look at the environment.
    assert inventory.get("two").name == "two"


def test_a_reference_in_defaults_counts_for_every_board_with_its_line(tmp_path: Path) -> None:
    inventory = load(tmp_path, SECRET_BENCH, {"RIG_WIFI_SSID": "lab"})
    problems = inventory.check()
    assert [(p.board, p.line, p.key, p.variable) for p in problems] == [
        ("one", 5, "defaults.network.wifi_password", "RIG_WIFI_PASSWORD"),
        ("two", 5, "defaults.network.wifi_password", "RIG_WIFI_PASSWORD"),
        ("two", 16, "boards[2].network.broker_password", "RIG_BROKER_PASSWORD"),
    ]
    assert str(problems[0]).startswith(
        f"{inventory.path}:5: defaults.network.wifi_password: "
        "environment variable RIG_WIFI_PASSWORD is not set"
    )
    assert "'one'" in str(problems[0])
    with pytest.raises(MissingVariable) as caught:
        inventory.select("two")
    # One error for the board, naming every variable it still lacks.
    assert "RIG_WIFI_PASSWORD" in str(caught.value)
    assert f"RIG_BROKER_PASSWORD ({inventory.path}:16)" in str(caught.value)
    assert inventory.select("virtual").network.wifi_password is None


def test_secret_values_appear_in_no_message_or_repr(tmp_path: Path) -> None:
    secret = "s3cr3t-7f2d9c-value"
    inventory = load(tmp_path, SECRET_BENCH, {"RIG_WIFI_SSID": secret, "RIG_WIFI_PASSWORD": secret})
    texts = [repr(inventory), str(inventory)]
    for board in inventory.boards:
        texts += [repr(board), str(board), repr(board.network), str(board.network)]
        texts += [repr(s) + str(s) for s in board.secrets()]
    texts += [str(p) + repr(p) for p in inventory.check()]
    with pytest.raises(MissingVariable) as caught:
        inventory.select("two")
    texts.append(str(caught.value) + repr(caught.value))
    assert inventory.get("one").network.wifi_password == Secret("RIG_WIFI_PASSWORD")
    assert not [text for text in texts if secret in text]


@pytest.mark.parametrize("key", ["wifi_password", "broker_password"])
def test_literal_secret_is_refused_without_repeating_it(tmp_path: Path, key: str) -> None:
    secret = "hunter2-literal-9e1"
    text = f"""
    boards:
      - name: bit
        kind: esp32
        match: {{serial_number: "1"}}
        network:
          {key}: {secret}
    """
    message = problem(tmp_path, text, 6, f"boards[0].network.{key}")
    assert "write it as ${" in message
    assert "secrets never live in boards.yaml" in message
    assert secret not in message


def test_literal_secret_in_defaults_is_refused(tmp_path: Path) -> None:
    text = """
    defaults:
      network:
        wifi_password: 12345678
    boards: []
    """
    message = problem(tmp_path, text, 3, "defaults.network.wifi_password")
    assert "12345678" not in message
    assert "${RIG_WIFI_PASSWORD}" in message


def test_partial_reference_is_refused(tmp_path: Path) -> None:
    text = """
    boards:
      - name: bit
        kind: esp32
        match: {serial_number: "1"}
        network: {wifi_ssid: "lab-${FLOOR}"}
    """
    assert "'lab-${FLOOR}'" in problem(tmp_path, text, 5, "boards[0].network.wifi_ssid")


# -- bad inventories -----------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(InventoryError) as caught:
        load_inventory(path, env={})
    assert str(caught.value).startswith(f"{path}: file: cannot read it: ")
    assert "No such file" in str(caught.value)


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    text = """
    boards:
      - name: virtual
        kind: virtual
      - name: [unclosed
    """
    assert "expected ',' or ']'" in problem(tmp_path, text, 5, "YAML syntax")


def test_control_character_names_the_line(tmp_path: Path) -> None:
    assert "U+0001" in problem(tmp_path, "boards: []\n# \x01\n", 2, "YAML syntax")


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "boards.yaml"
    path.write_bytes(b"boards: []\n# caf\xe9\n")
    with pytest.raises(InventoryError, match="not UTF-8"):
        load_inventory(path, env={})


@pytest.mark.parametrize(
    ("text", "got"), [("- a\n- b\n", "a list"), ("", "an empty file"), ("hello\n", "'hello'")]
)
def test_top_level_must_be_a_map(tmp_path: Path, text: str, got: str) -> None:
    assert got in problem(tmp_path, text, 1, "(top level)")


def test_boards_is_required(tmp_path: Path) -> None:
    assert "missing" in problem(tmp_path, "defaults: {kind: esp32}\n", 1, "boards")


@pytest.mark.parametrize(
    ("text", "line", "key", "suggestion"),
    [
        ("bords: []\n", 1, "bords", "'boards'"),
        ("boards:\n  - name: v\n    kind: virtual\n    tag: [x]\n", 4, "boards[0].tag", "'tags'"),
        (USB.replace("serial_number", "serial"), 4, "boards[0].match.serial", "'serial_number'"),
        (
            "defaults:\n  network:\n    broker_hots: auto\nboards: []\n",
            3,
            "defaults.network.broker_hots",
            "'broker_host'",
        ),
        ("defaults:\n  baud: 9600\nboards: []\n", 2, "defaults.baud", "'baudrate'"),
    ],
)
def test_unknown_keys_suggest_the_closest(
    tmp_path: Path, text: str, line: int, key: str, suggestion: str
) -> None:
    message = problem(tmp_path, text, line, key)
    assert "unknown key" in message
    assert f"did you mean {suggestion}?" in message


@pytest.mark.parametrize(
    ("text", "line", "key", "shown"),
    [
        (USB.replace("0x10c4", "xyz"), 4, "boards[0].match.vid", "'xyz'"),
        (USB.replace("0xea60", "0x10000"), 4, "boards[0].match.pid", "'0x10000'"),
        (USB.replace("0xea60", "[1]"), 4, "boards[0].match.pid", "a list"),
        (USB + "    baudrate: fast\n", 5, "boards[0].baudrate", "'fast'"),
        (USB + '    baudrate: "9600"\n', 5, "boards[0].baudrate", "'9600'"),
        (USB + "    baudrate: 0\n", 5, "boards[0].baudrate", "'0'"),
        (USB + "    tags: wifi\n", 5, "boards[0].tags", "'wifi'"),
        (USB + "    tags: [wifi, {a: 1}]\n", 5, "boards[0].tags[1]", "a map"),
        (USB + "    tags: [has space]\n", 5, "boards[0].tags[0]", "'has space'"),
        (USB.replace("name: bit", "name: bad name"), 2, "boards[0].name", "'bad name'"),
        (USB.replace("name: bit", "name: [x]"), 2, "boards[0].name", "a list"),
        (USB.replace("kind: esp32", "kind: esp8266"), 3, "boards[0].kind", "'esp8266'"),
        (USB.replace("match: {", "match: [").replace('"0001"}', '"0001"]'), 4, "boards[0].match", "a list"),
        ("boards: {virtual: {}}\n", 1, "boards", "a map"),
        ("boards:\n  - virtual\n", 2, "boards[0]", "'virtual'"),
        (USB + "    network: {broker_host: [a]}\n", 5, "boards[0].network.broker_host", "a list"),
        (USB + "    network: {wifi_ssid: !env SSID}\n", 5, "boards[0].network.wifi_ssid", "!env"),
    ],
)
def test_wrong_types_name_the_value(tmp_path: Path, text: str, line: int, key: str, shown: str) -> None:
    assert shown in problem(tmp_path, text, line, key)


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ('"."', "'.'"),
        ('".."', "'..'"),
        ('".hidden"', "'.hidden'"),
        ('"-rf"', "'-rf'"),
        ('"../out"', "'../out'"),
        ('"a/b"', "'a/b'"),
        (r'"a\\b"', r"'a\\b'"),  # a backslash, shown escaped
        (r'"a\0b"', r"'a\x00b'"),  # NUL
    ],
)
def test_a_board_name_that_is_no_plain_folder_name_is_refused(tmp_path: Path, name: str, shown: str) -> None:
    # A board name is a folder (the gate's OUT/NAME): "out/.." would be the gate's parent folder.
    message = problem(tmp_path, USB.replace("name: bit", f"name: {name}"), 2, "boards[0].name")
    assert shown in message
    assert "does not start with '.' or '-'" in message


def test_a_board_name_may_hold_dots_and_dashes_inside(tmp_path: Path) -> None:
    assert load(tmp_path, USB.replace("name: bit", "name: esp32-c3.v1_a")).names() == ["esp32-c3.v1_a"]


def test_bare_decimal_usb_id_is_refused_as_ambiguous(tmp_path: Path) -> None:
    # lsusb's 1a86:7523 copied as "pid: 7523" would otherwise silently mean 0x1d63.
    message = problem(tmp_path, USB.replace("0xea60", "7523"), 4, "boards[0].match.pid")
    assert 'write 0x7523 or "7523"' in message


def test_duplicate_board_names_name_both_lines(tmp_path: Path) -> None:
    text = """
    boards:
      - name: virtual
        kind: virtual
      - name: bit
        kind: generic
        match: {port: /dev/ttyACM0}
      - kind: virtual
        name: virtual
    """
    path = tmp_path / "boards.yaml"
    message = problem(tmp_path, text, 8, "boards[2].name")
    assert f"duplicate board name 'virtual'; first used at {path}:2 (boards[0].name)" in message


def test_duplicate_keys_are_refused(tmp_path: Path) -> None:
    text = """
    boards:
      - name: virtual
        kind: virtual
        kind: esp32
    """
    assert "first given at line 3" in problem(tmp_path, text, 4, "boards[0].kind")


@pytest.mark.parametrize("match", ["", "    match: {}\n", "    match:\n"])
def test_usb_board_needs_a_match(tmp_path: Path, match: str) -> None:
    text = f"boards:\n  - name: bit\n    kind: esp32\n{match}"
    message = problem(tmp_path, text, 4 if match else 2, "boards[0].match")
    assert "could never be found" in message
    assert "esp32" in message


def test_virtual_board_must_not_have_match(tmp_path: Path) -> None:
    text = "boards:\n  - name: v\n    kind: virtual\n    match: {port: /dev/ttyUSB0}\n"
    assert "must not have match" in problem(tmp_path, text, 4, "boards[0].match")


def test_virtual_board_has_no_wifi(tmp_path: Path) -> None:
    text = "boards:\n  - name: v\n    kind: virtual\n    network: {wifi_ssid: lab}\n"
    assert "no Wi-Fi" in problem(tmp_path, text, 4, "boards[0].network.wifi_ssid")


def test_url_excludes_other_match_fields(tmp_path: Path) -> None:
    text = 'boards:\n  - name: r\n    kind: esp32\n    match: {url: "socket://x:1", vid: 0x10c4}\n'
    assert "drop vid" in problem(tmp_path, text, 4, "boards[0].match.url")


@pytest.mark.parametrize(
    ("text", "line", "key", "shown"),
    [
        ("boards:\n  - kind: virtual\n", 2, "boards[0].name", "missing"),
        ("boards:\n  - name: b\n    match: {port: /dev/ttyUSB0}\n", 2, "boards[0].kind", "defaults.kind"),
        ("defaults:\n  name: x\nboards: []\n", 2, "defaults.name", "give it on the board"),
        ("defaults:\n  match: {vid: 0x10c4}\nboards: []\n", 2, "defaults.match", "give it on each board"),
        ("defaults:\n  kind: esp33\nboards: []\n", 2, "defaults.kind", "'esp33'"),
        ("base: &b {kind: virtual}\nboards: []\n", 1, "base", "unknown key"),
        ("boards:\n  - <<: {kind: virtual}\n    name: v\n", 2, "boards[0].<<", "merge keys"),
    ],
)
def test_missing_and_misplaced_keys(tmp_path: Path, text: str, line: int, key: str, shown: str) -> None:
    assert shown in problem(tmp_path, text, line, key)


# -- lookups -------------------------------------------------------------------------------------


def test_unknown_board_lists_the_known_ones(tmp_path: Path) -> None:
    inventory = load(tmp_path, USB + "  - name: virtual\n    kind: virtual\n")
    with pytest.raises(InventoryError) as caught:
        inventory.select("virtaul")
    message = str(caught.value)
    assert message.startswith(f"{inventory.path}: boards: no board named 'virtaul'")
    assert "did you mean 'virtual'?" in message
    assert "(known: bit, virtual)" in message
    with pytest.raises(InventoryError):
        inventory.missing_env("nope")


def test_default_inventory_path(tmp_path: Path) -> None:
    assert default_inventory_path(tmp_path, env={}) == tmp_path / "boards.yaml"
    assert default_inventory_path(tmp_path, env={"RIG_INVENTORY": ""}) == tmp_path / "boards.yaml"
    other = tmp_path / "lab2.yaml"
    assert default_inventory_path(tmp_path, env={"RIG_INVENTORY": str(other)}) == other
