"""The store's tables (SQLAlchemy 2 ORM). The schema itself is made by the migrations
(``rig/history/migrations``); these classes must match them, and a test checks that they do.

Room for what comes next (board health, trends): every result names its board and its kind of
failure, every run its time, so "the last N infrastructure results of a board" and "a figure
across nights" are one indexed query each.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class Run(Base):
    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    started: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    ended: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    commit: Mapped[str] = mapped_column(String(64), default="")
    tree_hash: Mapped[str] = mapped_column(String(128), default="")
    release: Mapped[str] = mapped_column(String(128), default="")
    runtime: Mapped[str] = mapped_column(Text, default="")
    host: Mapped[str] = mapped_column(String(255), default="")
    rig_version: Mapped[str] = mapped_column(String(32), default="")
    source: Mapped[str] = mapped_column(Text, default="")
    results: Mapped[list[Result]] = relationship(back_populates="run", cascade="all, delete-orphan")


class Result(Base):
    __tablename__ = "results"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    board: Mapped[str] = mapped_column(String(200), index=True)
    nodeid: Mapped[str] = mapped_column(Text, index=True)
    outcome: Mapped[str] = mapped_column(String(16))
    failure: Mapped[str] = mapped_column(String(16))
    duration: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str] = mapped_column(Text, default="")
    started: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    run: Mapped[Run] = relationship(back_populates="results")
    figures: Mapped[list[Figure]] = relationship(back_populates="result", cascade="all, delete-orphan")


class Figure(Base):
    __tablename__ = "figures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    result_id: Mapped[int] = mapped_column(ForeignKey("results.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    value: Mapped[float] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(32), default="")
    result: Mapped[Result] = relationship(back_populates="figures")


class BoardState(Base):
    """A board's state as a person last set it (``rig lab health BOARD --set``): maintenance
    and retired take it out until set back; good forgives the results stored before ``since``."""

    __tablename__ = "board_state"

    board: Mapped[str] = mapped_column(String(200), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    why: Mapped[str] = mapped_column(Text)
    since: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    set_by: Mapped[str] = mapped_column(String(200))
