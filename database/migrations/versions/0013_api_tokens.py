"""api_tokens: the REST API's tokens, one per (account, scope) grant, stored hashed

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05

``app.py token create --account ACC --scope read|write|admin`` adds a row: the token's public
id, the SHA-256 of its random secret (the secret is shown once and never stored), the account
it reaches and its scope; ``token revoke`` sets ``revoked_at``. database/token_models.py
explains each column. A new table only: nothing stored before is touched.

Frozen once released: plain SQL and types here, never classes from database.models.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID_TYPE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", ID_TYPE, nullable=False),
        sa.Column("token_id", sa.String(length=32), nullable=False),
        sa.Column("secret_sha256", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=128), nullable=False),
        sa.Column("scope", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("length(token_id) > 0", name=op.f("ck_api_tokens_token_id_not_empty")),
        sa.CheckConstraint(
            "length(secret_sha256) = 64", name=op.f("ck_api_tokens_secret_sha256_is_hex_digest")
        ),
        sa.CheckConstraint(
            "length(account_id) > 0", name=op.f("ck_api_tokens_account_id_not_empty")
        ),
        sa.CheckConstraint(
            "scope IN ('read', 'write', 'admin')", name=op.f("ck_api_tokens_scope_valid")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_id", name=op.f("uq_api_tokens_token_id")),
    )
    op.create_index(op.f("ix_api_tokens_account_id"), "api_tokens", ["account_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_api_tokens_account_id"), table_name="api_tokens")
    op.drop_table("api_tokens")
