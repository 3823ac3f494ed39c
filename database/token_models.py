"""API tokens' schema (migration 0013): one row per token of the REST API (docs/api.md).

Kept apart from :mod:`database.models` (which loads this module in ``all_tables()``, so one
``Base.metadata`` holds every table) because tokens are an aggregate of their own, written by
``app.py token create|revoke`` and read by the API on each request.

- ``token_id``: the public half of a token (``slt_<token_id>_<secret>``), unique; what
  ``token list`` shows and ``token revoke`` takes.
- ``secret_sha256``: the SHA-256 of the token's 32-byte random secret, hex; the secret itself
  is shown once, when the token is created, and never stored.
- ``account_id``: the account whose data the token reaches (the name the trades carry).
- ``scope``: ``read`` < ``write`` < ``admin``: a scope allows what the ones before it allow.
- ``revoked_at``: set once by ``token revoke``; a revoked token is refused (401).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from database.models import ID_TYPE, Base, UTCDateTime, _in

TOKEN_SCOPES: tuple[str, ...] = ("read", "write", "admin")  # each allows what those before it do


class ApiToken(Base):
    __tablename__ = "api_tokens"
    __table_args__ = (
        UniqueConstraint("token_id"),
        CheckConstraint("length(token_id) > 0", name="token_id_not_empty"),
        CheckConstraint("length(secret_sha256) = 64", name="secret_sha256_is_hex_digest"),
        CheckConstraint("length(account_id) > 0", name="account_id_not_empty"),
        CheckConstraint(_in("scope", TOKEN_SCOPES), name="scope_valid"),
        Index(None, "account_id"),
    )

    id: Mapped[int] = mapped_column(ID_TYPE, primary_key=True)
    token_id: Mapped[str] = mapped_column(String(32))
    secret_sha256: Mapped[str] = mapped_column(String(64))
    account_id: Mapped[str] = mapped_column(String(128))
    scope: Mapped[str] = mapped_column(String(8))
    name: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
