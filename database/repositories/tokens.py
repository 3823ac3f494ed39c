"""TokenRepository: the REST API's tokens (``api_tokens``, migration 0013), stored hashed.

The repository stores and reads rows; it never sees a secret, only its SHA-256 (made by
``services.tokens``), and never commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Table, func, insert, select, update
from sqlalchemy.orm import Session

from database.records import check_choice
from database.token_models import TOKEN_SCOPES, ApiToken

TOKENS: Table = ApiToken.__table__  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """One stored token, without its secret."""

    token_id: str
    account_id: str
    scope: str
    name: str | None
    created_at: datetime
    revoked_at: datetime | None
    secret_sha256: str

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class TokenRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(
        self,
        *,
        token_id: str,
        secret_sha256: str,
        account_id: str,
        scope: str,
        created_at: datetime,
        name: str | None = None,
    ) -> None:
        check_choice("scope", scope, TOKEN_SCOPES)
        self._session.execute(
            insert(TOKENS).values(
                token_id=token_id, secret_sha256=secret_sha256, account_id=account_id,
                scope=scope, name=name, created_at=created_at,
            )
        )  # fmt: skip

    def get(self, token_id: str) -> TokenRecord | None:
        row = self._session.execute(select(*_COLUMNS).where(TOKENS.c.token_id == token_id)).first()
        return None if row is None else TokenRecord(*row)

    def revoke(self, token_id: str, when: datetime) -> bool:
        """Mark the token revoked; False when there is no such active token."""
        done = self._session.execute(
            update(TOKENS)
            .where(TOKENS.c.token_id == token_id, TOKENS.c.revoked_at.is_(None))
            .values(revoked_at=when)
        )
        return bool(done.rowcount)

    def revocations(self) -> int:
        """How many tokens are revoked: it only grows (a revocation is never undone, a token
        never deleted), so a change says some token was revoked since."""
        return int(self._session.scalar(select(func.count(TOKENS.c.revoked_at))) or 0)

    def list(self, account_id: str | None = None) -> list[TokenRecord]:
        """Every token (of ``account_id``), oldest first, revoked ones included."""
        statement = select(*_COLUMNS).order_by(TOKENS.c.id)
        if account_id is not None:
            statement = statement.where(TOKENS.c.account_id == account_id)
        return [TokenRecord(*row) for row in self._session.execute(statement)]


_COLUMNS = (
    TOKENS.c.token_id, TOKENS.c.account_id, TOKENS.c.scope, TOKENS.c.name, TOKENS.c.created_at,
    TOKENS.c.revoked_at, TOKENS.c.secret_sha256,
)  # fmt: skip

__all__ = ["TOKENS", "TokenRecord", "TokenRepository"]
