"""alembic's environment, run by ``rig.history.store`` (never by an ``alembic`` command line):
the connection to migrate is handed over in ``config.attributes["connection"]``."""

from __future__ import annotations

from alembic import context

from rig.history.models import Base
from rig.history.store import VERSION_TABLE

connection = context.config.attributes["connection"]
context.configure(
    connection=connection, target_metadata=Base.metadata, render_as_batch=True, version_table=VERSION_TABLE
)
with context.begin_transaction():
    context.run_migrations()
