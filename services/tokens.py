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

**Verified tokens are kept** per TokenService (each server process has one): a request with a
token seen before costs a dictionary lookup instead of a database query. What is kept is the
SHA-256 of the whole token and its Grant, never the token. A revocation is honoured:

- at once by every TokenService of the process that revokes (``revoke`` clears them all);
- within ``REVOCATION_CHECK_S`` (1 s) by the other processes: each counts the revoked tokens
  (one query on a table of a few rows) at most once a second, on a request, and forgets every
  token it kept when the count has changed (``app.py token revoke`` in another process).

A token is only kept when no revocation was seen between its lookup and keeping it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Callable
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
REVOCATION_CHECK_S = 1.0  # another process's revocation is honoured within this
KEPT_TOKENS = 10_000  # verified tokens kept per service at most (all forgotten beyond)
_revoked_here = [0]  # revocations made by this process (any TokenService): clears every cache


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
    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        check_every: float = REVOCATION_CHECK_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
        self._check_every = check_every
        self._clock = clock
        self._kept: dict[bytes, Grant] = {}  # SHA-256 of the token -> its grant
        self._lock = threading.Lock()
        self._epoch = 0  # +1 each time the kept tokens are forgotten
        self._revocations: int | None = None  # the revoked tokens counted at the last check
        self._revoked_here = _revoked_here[0]
        self._checked_at = float("-inf")

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
            done = TokenRepository(session).revoke(token_id, datetime.now(UTC))
        _revoked_here[0] += 1  # every TokenService of this process forgets what it kept
        return done

    def list(self, account_id: str | None = None) -> list[TokenRecord]:
        with self._sessions() as session:
            return TokenRepository(session).list(account_id)

    def kept(self, token: str) -> Grant | None:
        """The grant of a token verified before, from memory, when no revocation check is
        due (no I/O: an async caller needs no thread); None: ask :meth:`authenticate`."""
        if _revoked_here[0] != self._revoked_here:
            return None
        if self._clock() - self._checked_at >= self._check_every:
            return None
        return self._kept.get(hashlib.sha256(token.encode()).digest())

    def authenticate(self, token: str) -> Grant | None:
        """The grant of ``token``; None when it is malformed, unknown, wrong or revoked (a
        token verified before: from memory, see the module's doc)."""
        key = hashlib.sha256(token.encode()).digest()
        epoch = self._check_revocations()
        found = self._kept.get(key)
        if found is not None:
            return found
        found = self._verify(token)
        if found is not None:
            with self._lock:
                if self._epoch == epoch:  # no revocation seen since the lookup began
                    if len(self._kept) >= KEPT_TOKENS:
                        self._kept.clear()
                    self._kept[key] = found
        return found

    def _check_revocations(self) -> int:
        """Forget the kept tokens when a token was revoked (here: at once; elsewhere: counted
        at most every ``check_every`` seconds); the epoch of the kept tokens."""
        now = self._clock()
        with self._lock:
            local = _revoked_here[0] != self._revoked_here
            due = now - self._checked_at >= self._check_every
            if due:
                self._checked_at = now  # one request counts, the others go on meanwhile
            if local:
                self._revoked_here = _revoked_here[0]
                self._forget()
            if not due:
                return self._epoch
        with self._sessions() as session:
            count = TokenRepository(session).revocations()
        with self._lock:
            if count != self._revocations:
                self._revocations = count
                self._forget()
            return self._epoch

    def _forget(self) -> None:
        self._kept.clear()
        self._epoch += 1

    def _verify(self, token: str) -> Grant | None:
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


__all__ = [
    "PREFIX",
    "REVOCATION_CHECK_S",
    "SCOPE_RANK",
    "CreatedToken",
    "Grant",
    "TokenService",
    "secret_digest",
]
