"""Open the results store, migrated to this rig's schema, and write and read runs.

``open_store(url)`` upgrades the database to the newest migration this rig has (alembic,
``rig/history/migrations``) and refuses one that a newer rig has migrated further: an older rig
must not write rows whose meaning it does not know. On PostgreSQL the upgrade holds an advisory
lock, so that two gates opening a fresh database at once do not both create the tables.

Lifecycle: ``Store`` holds an SQLAlchemy engine; ``close()`` (or ``with``) disposes of it.
``write`` is one transaction per run: a run is stored whole or not at all.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, select, text
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from rig.errors import ConfigError
from rig.history.models import Figure, Result, Run
from rig.history.records import RunIn

MIGRATIONS = Path(__file__).parent / "migrations"
# alembic's bookkeeping table, named for the rig: a lab's PostgreSQL database may hold another
# application's ``alembic_version``.
VERSION_TABLE = "rig_history_version"
# The default store's file name, next to the inventory (boards.yaml): the lab's folder, which
# outlives every gate's output folder (the gate empties that at each run).
DEFAULT_FILE = "rig-history.sqlite"
# Any fixed number: the key of PostgreSQL's advisory lock held while migrating.
_MIGRATION_LOCK = 0x7269_6768
_MIGRATING = threading.Lock()
# How long (s) an SQLite writer waits for another one's transaction to end.
_SQLITE_BUSY_S = 60


class HistoryError(ConfigError):
    """The store cannot be opened or written: a bad URL, a database that is not a store, one a
    newer rig migrated, a server that is down. Names the URL (without its password)."""

    def __init__(self, url: str, message: str) -> None:
        super().__init__("--history", "history", f"{url}: {message}")


@dataclass(frozen=True)
class Outcome:
    """One row of ``rig history``: a test on a board in one run."""

    started: datetime
    run_kind: str
    board: str
    nodeid: str
    outcome: str
    failure: str
    duration: float
    message: str


def default_url(inventory: Path) -> str:
    """The lab's store: an SQLite file next to its inventory."""
    return f"sqlite:///{(inventory.resolve().parent / DEFAULT_FILE)}"


def _shown(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL has no password we could find either
        return url


def _utc(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, timezone.utc)


def _aware(moment: datetime) -> datetime:
    # SQLite keeps no time zone: what was written is UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def _engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": _SQLITE_BUSY_S})

        @event.listens_for(engine, "connect")
        def _connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            # SQLAlchemy's recipe for SQLite: Python's sqlite3 starts no transaction before DDL
            # and none that locks before the first write; the rig starts its own, below.
            dbapi_connection.isolation_level = None
            # SQLite enforces foreign keys (and so the cascade) only when asked, per connection.
            dbapi_connection.execute("PRAGMA foreign_keys=ON")

        @event.listens_for(engine, "begin")
        def _begin(connection):  # type: ignore[no-untyped-def]
            # The write lock at once: two writers (or two first migrations) queue, up to the busy
            # timeout, instead of both reading "no tables yet" and both creating them.
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True)


def _alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _migrate(connection: Connection, url: str) -> None:
    scripts = ScriptDirectory(str(MIGRATIONS))
    current = MigrationContext.configure(
        connection, opts={"version_table": VERSION_TABLE}
    ).get_current_revision()
    known = {script.revision for script in scripts.walk_revisions()}
    if current is not None and current not in known:
        raise HistoryError(
            url,
            f"the store is at migration {current}, newer than this rig knows (newest: "
            f"{scripts.get_current_head()}): upgrade the rig, or point it at another store",
        )
    command.upgrade(_alembic_config(connection), "head")


def open_store(url: str) -> Store:
    """Open the store at ``url`` (``sqlite:///PATH``, ``postgresql+psycopg://...``), creating and
    migrating it to this rig's newest schema. Raises ``HistoryError``."""
    shown = _shown(url)
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    try:
        engine = _engine(url)
    except (SQLAlchemyError, ImportError, ValueError) as e:
        raise HistoryError(shown, f"not a database URL this rig can open: {e}") from e
    try:
        # alembic's ``context`` and ``op`` are module-wide: one migration at a time per process.
        with _MIGRATING, engine.begin() as connection:
            if engine.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
            _migrate(connection, shown)
    except HistoryError:
        engine.dispose()
        raise
    except SQLAlchemyError as e:
        engine.dispose()
        raise HistoryError(shown, f"cannot open the store: {e.__class__.__name__}: {e}") from e
    return Store(engine, shown)


class Store:
    def __init__(self, engine: Engine, url: str) -> None:
        self.engine = engine
        self.url = url

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self.engine.dispose()

    def write(self, run: RunIn) -> bool:
        """Store ``run`` with its results and figures, in one transaction. False when a run of
        the same key is there already (it is kept as it was): importing twice adds nothing."""
        row = Run(
            key=run.key,
            kind=run.kind,
            started=_utc(run.started),
            ended=_utc(run.ended),
            commit=run.commit,
            tree_hash=run.tree_hash,
            release=run.release,
            runtime=run.runtime,
            host=run.host,
            rig_version=run.rig_version,
            source=run.source,
        )
        for result in run.results:
            row.results.append(
                Result(
                    board=result.board,
                    nodeid=result.nodeid,
                    outcome=result.outcome,
                    failure=result.failure,
                    duration=result.duration,
                    message=result.message,
                    started=_utc(result.started),
                    figures=[Figure(name=f.name, value=f.value, unit=f.unit) for f in result.figures],
                )
            )
        try:
            with Session(self.engine) as session, session.begin():
                if session.scalar(select(Run.id).where(Run.key == run.key)) is not None:
                    return False
                session.add(row)
        except IntegrityError:
            # Another writer stored the same run between our look and our insert.
            return False
        except SQLAlchemyError as e:
            raise HistoryError(self.url, f"cannot write run {run.key}: {e.__class__.__name__}: {e}") from e
        return True

    def outcomes(
        self, *, nodeid: str | None = None, board: str | None = None, last: int = 10
    ) -> list[Outcome]:
        """The newest ``last`` results of a test (its nodeid, or a part of it) and/or a board,
        newest first."""
        query = select(Result, Run.started, Run.kind).join(Run)
        if nodeid is not None:
            query = query.where(Result.nodeid.contains(nodeid, autoescape=True))
        if board is not None:
            query = query.where(Result.board == board)
        query = query.order_by(Run.started.desc(), Result.id.desc()).limit(last)
        with Session(self.engine) as session:
            return [
                Outcome(_aware(started), kind, r.board, r.nodeid, r.outcome, r.failure, r.duration, r.message)
                for r, started, kind in session.execute(query)
            ]

    def run_keys(self) -> Iterator[str]:
        with Session(self.engine) as session:
            yield from session.scalars(select(Run.key).order_by(Run.id))

    def count(self, table: type[Run] | type[Result] | type[Figure]) -> int:
        from sqlalchemy import func

        with Session(self.engine) as session:
            return session.scalar(select(func.count()).select_from(table)) or 0
