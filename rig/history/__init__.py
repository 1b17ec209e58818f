"""The results store: every run the rig makes, kept across nights (docs/history.md).

``rig.history.store.open_store(url)`` opens (and migrates) the database;
``rig.history.folder`` turns run folders into the ``RunIn`` a writer hands ``Store.write``.
SQLAlchemy and alembic are the ``history`` extra: this module imports neither, so that the
``rig`` command works without them and says what to install when a command needs them.
"""

from __future__ import annotations

import importlib.util

from rig.errors import ConfigError

EXTRA = "pip install 'micropython-mqtt-rig[history]'"


def available() -> bool:
    """Whether the store's libraries (the ``history`` extra) are installed."""
    return all(importlib.util.find_spec(module) is not None for module in ("sqlalchemy", "alembic"))


def require() -> None:
    """A ``ConfigError`` naming the extra to install when the store's libraries are missing."""
    for module in ("sqlalchemy", "alembic"):
        if importlib.util.find_spec(module) is None:
            raise ConfigError("--history", "history", f"the results store needs {module}: {EXTRA}")
