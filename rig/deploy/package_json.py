"""The firmware's ``package.json`` (mip's format): reading its ``deps`` and rewriting their pins.

``{"deps": [["umqtt.simple", "1.3.4"], ...], "version": "1.0.0"}``: each entry is a micropython-lib
package name and a version, "latest" or exact (PEP 440). The rig pins exact versions there and
records what they resolve to in the lock next to it (``rig.deploy.lockfile``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from rig.atomic import write_atomically
from rig.deploy.mip_index import MIP_URL_PREFIXES
from rig.deploy.sources import LATEST, PACKAGE_NAME, is_exact_version
from rig.errors import ConfigError


@dataclass(frozen=True)
class Requirement:
    """One ``[name, version]`` entry of a package.json ``deps``; ``version`` is "latest" or exact."""

    name: str
    version: str

    @property
    def pinned(self) -> bool:
        return self.version != LATEST


def read_package_json(package_json: Path) -> list[Requirement]:
    """The ``deps`` of a mip package.json, validated; duplicates that agree are merged.

    Raises ``ConfigError`` naming the file and the key (``deps[1]``) for anything mip would choke on,
    and for URL dependencies (``github:...``), which the rig's cache and PyPI fallback cannot serve.
    """
    source = str(package_json)
    doc = _load(package_json)
    if "version" in doc and not isinstance(doc["version"], str):
        raise ConfigError(source, "version", f"expected a string, got {doc['version']!r}")
    deps = doc.get("deps", [])
    if not isinstance(deps, list):
        raise ConfigError(source, "deps", f"expected a list of [name, version], got {deps!r}")
    requirements: dict[str, tuple[int, Requirement]] = {}
    for i, entry in enumerate(deps):
        key = f"deps[{i}]"
        if not (isinstance(entry, list) and len(entry) == 2):
            raise ConfigError(source, key, f"expected [name, version], got {json.dumps(entry)}")
        name, version = entry
        if not isinstance(name, str) or not PACKAGE_NAME.fullmatch(name):
            if isinstance(name, str) and name.startswith(MIP_URL_PREFIXES):
                problem = f"{name!r}: URL dependencies are not supported; use a micropython-lib package name"
            else:
                problem = f"expected a package name like 'umqtt.simple', got {json.dumps(name)}"
            raise ConfigError(source, f"{key}[0]", problem)
        if not isinstance(version, str) or not (version == LATEST or is_exact_version(version)):
            raise ConfigError(
                source, f"{key}[1]", f"expected 'latest' or a version, got {json.dumps(version)}"
            )
        if name in requirements and requirements[name][1].version != version:
            first, earlier = requirements[name]
            raise ConfigError(
                source,
                key,
                f"{name} {version} conflicts with deps[{first}], which asks for {earlier.version}",
            )
        requirements.setdefault(name, (i, Requirement(name, version)))
    return [requirement for _, requirement in requirements.values()]


def write_pins(package_json: Path, pins: Mapping[str, str]) -> bool:
    """Set the version of every ``deps`` entry named in ``pins``; other keys and the order stay.

    Returns whether the file changed. The file is rewritten (atomically) in the layout the rig's
    firmware uses: two-space indent, one ``[name, version]`` pair per line.
    """
    read_package_json(package_json)  # refuses to rewrite what it could not read
    doc = _load(package_json)
    deps = doc.get("deps", [])
    assert isinstance(deps, list)  # read_package_json checked the shape
    new_deps = [[name, pins.get(name, version)] for name, version in deps]
    if new_deps == deps:
        return False
    doc["deps"] = new_deps
    write_atomically(package_json, _format(doc))
    return True


def _load(package_json: Path) -> dict[str, object]:
    source = str(package_json)
    try:
        text = package_json.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(source, "(file)", f"cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(source, "(file)", f"not UTF-8: {exc}") from exc
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(source, "(json)", f"not valid JSON: {exc.msg} at line {exc.lineno}") from exc
    if not isinstance(doc, dict):
        raise ConfigError(source, "(top level)", f"expected a JSON object, got {type(doc).__name__}")
    return doc


def _format(doc: dict[str, object]) -> str:
    lines = []
    for key, value in doc.items():
        if key == "deps" and isinstance(value, list) and value:
            pairs = ",\n".join(f"    {json.dumps(pair)}" for pair in value)
            lines.append(f"  {json.dumps(key)}: [\n{pairs}\n  ]")
        else:
            lines.append(f"  {json.dumps(key)}: {json.dumps(value)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"
