"""The inventory a group's run is given: the gate's own, with the group's boards alone.

A run of tests of several boards may claim any board of its inventory (``rig.multiboard``); the
gate tells a group's run which boards are its own by giving it an inventory that lists no other.
The file is the gate's inventory read round-trip (ruamel.yaml, the inventory's one YAML library,
``rig.inventory.yamltree``): ``defaults:``, ``tags:``, comments and ``${VAR}`` placeholders stay
as written, so no secret's value is ever written here. A ``count: N`` entry becomes the copies
the group has, each an entry of its own by the name the loader gives it (``vb-2``); the file is
then loaded back, and must name exactly the group's boards.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from rig.errors import ConfigError
from rig.inventory import load_inventory

FILE = "group-inventory.yaml"


def write_group_inventory(source: Path, boards: Sequence[str], target: Path) -> Path:
    """Write to ``target`` the inventory ``source`` with ``boards`` alone; a ``ConfigError``
    naming ``source`` when the result does not list exactly them."""
    yaml = YAML(typ="rt")
    yaml.version = (1, 1)  # as the loader reads it (rig.inventory.yamltree)
    with source.open(encoding="utf-8") as f:
        doc: Any = yaml.load(f)
    wanted = set(boards)
    kept = []
    for entry in doc["boards"]:
        count = entry.get("count")
        if count is None:
            if entry.get("name") in wanted:
                kept.append(entry)
            continue
        # The loader's copies: NAME-1 .. NAME-N (rig.inventory.loader, ``count``).
        for i in range(1, int(count) + 1):
            name = f"{entry['name']}-{i}"
            if name in wanted:
                one = copy.deepcopy(entry)
                del one["count"]
                one["name"] = name
                kept.append(one)
    doc["boards"] = kept
    with target.open("w", encoding="utf-8") as f:
        yaml.dump(doc, f)
    written = load_inventory(target).names()
    if sorted(written) != sorted(boards):
        raise ConfigError(
            str(source),
            "boards",
            f"the group's inventory lists {written}, expected the group's boards {list(boards)}",
        )
    return target
