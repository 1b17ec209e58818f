"""The release bundle's manifest and files on disk: its hash, its checks, its reproducible .tar,
and which runtimes a bundle accepts. No board, no compiler: tests/rig/test_release.py has those."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pytest

from rig.errors import ConfigError
from rig.release.bundle import BundleCorrupt, open_bundle, write_bundle
from rig.release.manifest import BundleFile, ReleaseManifest, RuntimeTarget, SourceCommit, parse_manifest
from rig.release.on_board import compare
from rig.release.target import RuntimeRefused, check_runtime, runtime_key, target_for
from rig.runtime.identity import MpyAbi, RuntimeIdentity

UNIX_1_29 = RuntimeIdentity(
    "micropython", "1.29.0", "v1.29.0 on 2026-08-29", "linux", "x86_64", "standard", MpyAbi.decode(2822)
)
UNIX_1_28 = dataclasses.replace(UNIX_1_29, version="1.28.0", build="v1.28.0 on 2026-04-06")
ESP32_1_19 = RuntimeIdentity(
    "micropython",
    "1.19.1",
    "v1.19.1 on 2022-06-18",
    "esp32",
    "ESP32 module with ESP32",
    "",
    MpyAbi.decode(0x2806),
)
CONTENTS = {"main.py": b"import app\n", "app.mpy": b"M\x06\x00\x1f fake", "lib/dep.mpy": b"M\x06dep"}


def manifest_of(contents: dict[str, bytes], target: RuntimeTarget | None = None) -> ReleaseManifest:
    files = tuple(
        BundleFile(path, hashlib.sha256(data).hexdigest(), len(data), path, "")
        for path, data in sorted(contents.items())
    )
    return ReleaseManifest(
        version="1.0.0",
        runtime=target or target_for([UNIX_1_29]),
        source=SourceCommit("0" * 40, False),
        compiler="mpy-cross 1.29.0 emitting mpy 6.3",
        files=files,
        board_local=("config.json", "rig_manifest.json"),
    )


def test_the_bundle_hash_covers_the_files_alone_in_any_order() -> None:
    one = manifest_of(CONTENTS)
    reordered = dataclasses.replace(one, files=tuple(reversed(one.files)))
    other_commit = dataclasses.replace(one, source=SourceCommit("1" * 40, True))
    assert one.bundle_hash == reordered.bundle_hash == other_commit.bundle_hash
    changed = manifest_of({**CONTENTS, "app.mpy": b"M\x06\x00\x1f other"})
    assert changed.bundle_hash != one.bundle_hash


def test_the_manifest_reads_back_as_written() -> None:
    one = manifest_of(CONTENTS)
    again = parse_manifest(one.to_json(), "release.json")
    assert again == one
    assert json.loads(one.to_json())["bundle_hash"] == one.bundle_hash


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (lambda d: d["files"][0].update(sha256="f" * 64), "bundle_hash"),
        (lambda d: d["files"][0].update(path="../boot.py"), "files[0].path"),
        (lambda d: d["files"][1].update(size=-1), "files[1].size"),
        (lambda d: d.update(release_format=2), "release_format"),
        (lambda d: d["runtime"].update(mpy_abi="six"), "runtime.mpy_abi"),
        (lambda d: d["source"].update(dirty="no"), "source.dirty"),
    ],
)
def test_a_bad_manifest_is_refused_naming_the_key(edit: object, key: str) -> None:
    doc = json.loads(manifest_of(CONTENTS).to_json())
    edit(doc)  # type: ignore[operator]
    with pytest.raises(ConfigError) as caught:
        parse_manifest(json.dumps(doc), "b/release.json")
    assert caught.value.source == "b/release.json" and caught.value.key == key


def test_the_tar_is_the_same_bytes_whenever_it_is_written(tmp_path: Path) -> None:
    manifest = manifest_of(CONTENTS)
    first = write_bundle(tmp_path / "one", manifest, CONTENTS, b"contract\n")
    second = write_bundle(tmp_path / "two", manifest, dict(reversed(CONTENTS.items())), b"contract\n")
    assert first.tar is not None and second.tar is not None
    assert first.tar.read_bytes() == second.tar.read_bytes()
    assert first.tar.name == f"firmware-1.0.0-{manifest.bundle_hash[:12]}.tar"
    for path in (first.path, first.tar):
        read = open_bundle(path)
        assert (read.hash, read.contents, read.contract) == (manifest.bundle_hash, CONTENTS, b"contract\n")
    assert {p.stat().st_mtime for p in first.path.rglob("*")} == {315532800}


def test_a_bundle_file_with_other_bytes_is_refused_naming_it(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path, manifest_of(CONTENTS), CONTENTS, b"c")
    (bundle.path / "files" / "app.mpy").write_bytes(b"tampered")
    with pytest.raises(BundleCorrupt, match=r"files/app\.mpy: sha256 .* the manifest says"):
        open_bundle(bundle.path)
    (bundle.path / "files" / "app.mpy").write_bytes(CONTENTS["app.mpy"])
    (bundle.path / "files" / "stray.py").write_bytes(b"")
    with pytest.raises(BundleCorrupt, match=r"files/stray\.py: a file the manifest does not list"):
        open_bundle(bundle.path)


def test_board_differences_name_missing_changed_and_extra_files(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path, manifest_of(CONTENTS), CONTENTS, b"c")
    on_board = {f.path: (f.size, f.sha256) for f in bundle.manifest.files}
    assert not compare(bundle, {**on_board, "config.json": (3, "a" * 64), "rig_manifest.json": (3, "b" * 64)})
    del on_board["lib/dep.mpy"]
    on_board["app.mpy"] = (5, "c" * 64)
    on_board["app.py"] = (5, "d" * 64)  # a stale source beside the .mpy would be imported first
    found = compare(bundle, on_board)
    assert (found.missing, found.extra, [c.path for c in found.changed]) == (
        ("lib/dep.mpy",),
        ("app.py",),
        ["app.mpy"],
    )
    shipped = bundle.manifest.by_path()["app.mpy"].sha256[:12]
    assert found.lines() == [
        "missing: lib/dep.mpy",
        f"changed: app.mpy (sha256 cccccccccccc, the bundle's {shipped})",
        "extra: app.py (not in the bundle)",
    ]


def test_a_board_on_another_runtime_is_refused_naming_both() -> None:
    target = target_for([UNIX_1_29])
    check_runtime("virtual", UNIX_1_29, target, "ab" * 32)
    with pytest.raises(RuntimeRefused) as caught:
        check_runtime("virtual", UNIX_1_28, target, "ab" * 32)
    message = str(caught.value)
    assert "virtual runs micropython 1.28.0 (v1.28.0 on 2026-04-06)" in message
    assert f"bundle abababababab is built for {runtime_key(UNIX_1_29)} (mpy 6.3 x64)" in message


def test_one_bundle_serves_several_runtimes_of_one_mpy_format() -> None:
    target = target_for([UNIX_1_29, UNIX_1_28])
    assert (target.mpy_abi, target.arch) == ("6.3", "x64")
    for runtime in (UNIX_1_29, UNIX_1_28):
        check_runtime("virtual", runtime, target, "ab" * 32)
    with pytest.raises(ConfigError, match=r"load different \.mpy formats .* build a bundle for each"):
        target_for([UNIX_1_29, ESP32_1_19])
