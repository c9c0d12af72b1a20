"""Alembic environment of the store: migrations run on the connection linkage.store.migrate hands in
(inside its transaction and lock), or on `sqlalchemy.url` when run from the alembic command."""
from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from linkage.store.tables import metadata


def _run(connection) -> None:
    # Batch mode lets later migrations alter columns on SQLite (which has no ALTER COLUMN).
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True,
                      compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("the store's migrations run online only: use `linkage db upgrade CONFIG`")

connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    engine = sa.create_engine(context.config.get_main_option("sqlalchemy.url"))
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()
