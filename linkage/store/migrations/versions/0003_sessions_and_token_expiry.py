"""Review sessions checked on the server, and API tokens that expire.

``review_sessions``: one row per signed-in browser session (only a SHA-256 of its id is kept),
so that logging out, a password change or disabling an account ends sessions at once instead of
when the cookie expires. ``api_tokens.expires_at``: a token may be made to lapse. Each is
skipped where it exists: a store made by the older create_all code may already hold it.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    if not inspector.has_table("review_sessions"):
        _sessions()
    if "expires_at" not in {c["name"] for c in inspector.get_columns("api_tokens")}:
        with op.batch_alter_table("api_tokens") as batch:
            batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True)))


def _sessions() -> None:
    op.create_table(
        "review_sessions",
        sa.Column("session_sha256", sa.String(64), primary_key=True),
        sa.Column("username", sa.String(64), nullable=False, index=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
    )


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("expires_at")
    op.drop_table("review_sessions")
