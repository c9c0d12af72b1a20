"""Entity membership and golden records become versions (linkage.store.versions).

``entity_members`` and ``golden`` gain ``valid_to`` (the run that no longer has the row; NULL
while current) and ``golden`` a ``digest`` of its record; indexes on a record's and an entity's
versions. A store made before held every run's rows in full: each run's rows are closed by the
job's next complete run, so every run still reads exactly what it wrote, and the next run
writes only what it changes (its golden rows once, since the old rows carry no digest). Rows of
runs that never completed (there should be none: a run writes them as it completes) are
dropped, as no run can read them.

Revision ID: 0006
Revises: 0005_run_rejects
Create Date: 2026-12-02
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005_run_rejects"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_entity_members_record", "entity_members", ["source", "record_id"]),
    ("ix_entity_members_entity", "entity_members", ["entity_id"]),
    ("ix_golden_entity", "golden", ["entity_id"]),
)


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    have = {t: {c["name"] for c in inspector.get_columns(t)} for t in ("entity_members", "golden")}
    # Plain ADD COLUMN (no foreign key on valid_to): instant on SQLite, where a constraint
    # would copy the whole table, and a run id there is only ever written by its own run.
    if "digest" not in have["golden"]:
        op.add_column("golden", sa.Column("digest", sa.BigInteger))
    for table in ("entity_members", "golden"):
        if "valid_to" not in have[table]:
            op.add_column(table, sa.Column("valid_to", sa.String(40)))
    for name, table, columns in INDEXES:
        if name not in {i["name"] for i in sa.inspect(bind).get_indexes(table)}:
            op.create_index(name, table, columns)
    _close_old_runs(bind)


def _close_old_runs(bind) -> None:
    runs = sa.table("runs", sa.column("run_id"), sa.column("job"), sa.column("status"),
                    sa.column("finished_at"))
    complete = bind.execute(sa.select(runs.c.job, runs.c.run_id)
                            .where(runs.c.status == "complete")
                            .order_by(runs.c.job, runs.c.finished_at, runs.c.run_id)).all()
    for name in ("entity_members", "golden"):
        table = sa.table(name, sa.column("run_id"), sa.column("valid_to"))
        bind.execute(table.delete().where(table.c.run_id.not_in(
            sa.select(runs.c.run_id).where(runs.c.status == "complete"))))
        for (job, run_id), (next_job, next_run) in zip(complete, complete[1:]):
            if job == next_job:
                bind.execute(table.update().where(table.c.run_id == run_id,
                                                  table.c.valid_to.is_(None))
                             .values(valid_to=next_run))


def downgrade() -> None:
    for name, table, _ in INDEXES:
        op.drop_index(name, table_name=table)
    for table in ("entity_members", "golden"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("valid_to")
            if table == "golden":
                batch.drop_column("digest")
