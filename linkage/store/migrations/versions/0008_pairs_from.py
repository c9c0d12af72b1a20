"""A run built on another (`linkage add`) names it instead of copying its scored pairs.

``runs.pairs_from``: the run whose stored pairs this one has as well. An `add` used to copy
every pair of its base run into ``scored_pairs`` under its own id (864,224 rows, 6.7 s and
about 600 MB of store per `add` at a million persons); it now stores only its own pairs and
names its base, and readers take the pairs of the run and of the runs it names, in a chain
back to a full run (linkage.store.queue_rows.pairs_of). Existing runs get NULL: their copied
pairs are whole as they are.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if "pairs_from" in {c["name"] for c in sa.inspect(op.get_bind()).get_columns("runs")}:
        return
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("pairs_from", sa.String(40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("pairs_from")
