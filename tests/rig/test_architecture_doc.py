"""docs/architecture.md names every part of rig/ that .importlinter layers (issue 16 §5: the
layout a newcomer reads had fallen behind the code). import-linter's ``exhaustive`` contract makes
every new module take a layer; this makes it take a line in the page as well."""

from __future__ import annotations

import configparser
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def layered_modules() -> list[str]:
    config = configparser.ConfigParser()
    config.read(REPO / ".importlinter")
    layers = config["importlinter:contract:layers"]["layers"]
    return [name.strip() for line in layers.splitlines() for name in line.split(":") if name.strip()]


def test_every_layered_module_is_named_in_the_architecture_page() -> None:
    page = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    modules = layered_modules()
    assert len(modules) > 20, f"read no layers from .importlinter: {modules}"
    missing = [m for m in modules if f"`{m}.py`" not in page and f"`{m}/`" not in page]
    assert not missing, (
        f"docs/architecture.md does not name {', '.join(missing)} (as `NAME.py` or `NAME/`): "
        "add each to its layer's row"
    )
