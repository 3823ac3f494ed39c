"""API tokens: created, listed, revoked (``app.py token``) and checked on each API request.

>>> tokens = TokenService(sessions)
>>> created = tokens.create("ft-live", "read")
>>> created.token                      # shown once: slt_3f9c0a1b2c4d_<43 characters>
>>> tokens.authenticate(created.token)  # Grant('3f9c0a1b2c4d', 'ft-live', 'read')
>>> tokens.revoke(created.record.token_id)

A token is ``slt_<token id>_<secret>``: the id (12 hex digits) is public and names the token in
``token list`` and ``token revoke``; the secret is 32 random bytes (``secrets.token_bytes``),
base64url without padding. Only the SHA-256 of the secret's bytes is stored: a copy of the
database gives no usable token. The secret has 256 bits, so one unsalted hash is enough
(nothing to guess from a dictionary). Scopes: read < write < admin, each allowing what the
ones before it allow.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from database.records import check_choice, check_non_empty
from database.repositories.tokens import TokenRecord, TokenRepository
from database.token_models import TOKEN_SCOPES

PREFIX = "slt_"
SECRET_BYTES = 32
_ID_HEX = 12
_TOKEN = re.compile(rf"^{PREFIX}([0-9a-f]{{{_ID_HEX}}})_([A-Za-z0-9_-]{{43}})$")
SCOPE_RANK = {scope: rank for rank, scope in enumerate(TOKEN_SCOPES)}


@dataclass(frozen=True, slots=True)
class Grant:
    """What a valid token allows: ``scope`` on ``account_id``'s data."""

    token_id: str
    account_id: str
    scope: str

    def allows(self, scope: str) -> bool:
        return SCOPE_RANK[self.scope] >= SCOPE_RANK[scope]


@dataclass(frozen=True, slots=True)
class CreatedToken:
    record: TokenRecord
    token: str  # the whole token, secret included: shown once, never stored


def secret_digest(secret: bytes) -> str:
    return hashlib.sha256(secret).hexdigest()


class TokenService:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def create(self, account_id: str, scope: str, name: str | None = None) -> CreatedToken:
        check_non_empty("account", account_id)
        check_choice("scope", scope, TOKEN_SCOPES)
        if len(account_id) > 128:
            raise ValueError(f"account={account_id[:20]!r}... is invalid: at most 128 characters")
        token_id = secrets.token_hex(_ID_HEX // 2)
        secret = secrets.token_bytes(SECRET_BYTES)
        text = base64.urlsafe_b64encode(secret).rstrip(b"=").decode()
        now = datetime.now(UTC)
        with self._sessions.begin() as session:
            TokenRepository(session).add(
                token_id=token_id, secret_sha256=secret_digest(secret), account_id=account_id,
                scope=scope, created_at=now, name=name,
            )  # fmt: skip
            record = TokenRepository(session).get(token_id)
        assert record is not None
        return CreatedToken(record, f"{PREFIX}{token_id}_{text}")

    def revoke(self, token_id: str) -> bool:
        """Revoke ``token_id``; False when no active token has that id."""
        with self._sessions.begin() as session:
            return TokenRepository(session).revoke(token_id, datetime.now(UTC))

    def list(self, account_id: str | None = None) -> list[TokenRecord]:
        with self._sessions() as session:
            return TokenRepository(session).list(account_id)

    def authenticate(self, token: str) -> Grant | None:
        """The grant of ``token``; None when it is malformed, unknown, wrong or revoked."""
        match = _TOKEN.match(token)
        if match is None:
            return None
        token_id, text = match.groups()
        try:
            secret = base64.urlsafe_b64decode(text + "=")
        except (binascii.Error, ValueError):
            return None
        # one spelling per secret: base64's last character carries unused bits, and a token
        # differing there would decode to the same secret
        if base64.urlsafe_b64encode(secret).decode().rstrip("=") != text:
            return None
        with self._sessions() as session:
            record = TokenRepository(session).get(token_id)
        if record is None or not record.active:
            return None
        if not hmac.compare_digest(record.secret_sha256, secret_digest(secret)):
            return None
        return Grant(record.token_id, record.account_id, record.scope)


__all__ = ["PREFIX", "SCOPE_RANK", "CreatedToken", "Grant", "TokenService", "secret_digest"]
