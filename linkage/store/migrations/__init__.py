"""Alembic migrations of the store (run by linkage.store.migrate; no alembic.ini needed)."""
