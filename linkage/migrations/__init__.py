"""Alembic migrations of the store (run by linkage.migrate; no alembic.ini needed)."""
