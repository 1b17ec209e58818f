"""runs, results, figures

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(200), nullable=False, unique=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("started", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended", sa.DateTime(timezone=True), nullable=True),
        sa.Column("commit", sa.String(64), nullable=False),
        sa.Column("tree_hash", sa.String(128), nullable=False),
        sa.Column("release", sa.String(128), nullable=False),
        sa.Column("runtime", sa.Text, nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("rig_version", sa.String(32), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
    )
    op.create_index("ix_runs_started", "runs", ["started"])
    op.create_table(
        "results",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("board", sa.String(200), nullable=False),
        sa.Column("nodeid", sa.Text, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("failure", sa.String(16), nullable=False),
        sa.Column("duration", sa.Float, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("started", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_results_run_id", "results", ["run_id"])
    op.create_index("ix_results_board", "results", ["board"])
    op.create_index("ix_results_nodeid", "results", ["nodeid"])
    op.create_table(
        "figures",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("result_id", sa.Integer, sa.ForeignKey("results.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("unit", sa.String(32), nullable=False),
    )
    op.create_index("ix_figures_result_id", "figures", ["result_id"])
    op.create_index("ix_figures_name", "figures", ["name"])


def downgrade() -> None:
    op.drop_table("figures")
    op.drop_table("results")
    op.drop_table("runs")
