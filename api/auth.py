"""Who may call: a Bearer token per account (services/tokens.py), scopes read < write < admin.

No token, a malformed, unknown or revoked one: 401 (``WWW-Authenticate: Bearer``). Another
account's data: 404, the same answer as an account that does not exist (a token learns nothing
of other accounts). A scope too low for the route (a write with a read token): 403.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from api.models.common import PRINTABLE
from api.problems import Problem
from services.tokens import Grant, TokenService

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="token",
    description="`Authorization: Bearer slt_...`: a token of `app.py token create`",
)


def _tokens(request: Request) -> TokenService:
    return request.app.state.tokens


def _no_token() -> Problem:
    return Problem(
        401,
        "this route needs a token: Authorization: Bearer <token> (app.py token create)",
        headers={"WWW-Authenticate": 'Bearer realm="stratlens"'},
    )


def _refused() -> Problem:
    return Problem(
        401,
        "the token is malformed, unknown or revoked",
        headers={"WWW-Authenticate": 'Bearer realm="stratlens", error="invalid_token"'},
    )


def check_grant(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Grant:
    """:func:`grant` for a synchronous caller (it may read the database)."""
    if credentials is None:
        raise _no_token()
    found = _tokens(request).authenticate(credentials.credentials)
    if found is None:
        raise _refused()
    return found


async def grant(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> Grant:
    """The caller's grant; 401 without a valid token. A token verified before is answered
    from memory on the loop (services/tokens.py), else looked up on the thread pool."""
    if credentials is None:
        raise _no_token()
    tokens = _tokens(request)
    found = tokens.kept(credentials.credentials)
    if found is None:
        found = await run_in_threadpool(tokens.authenticate, credentials.credentials)
    if found is None:
        raise _refused()
    return found


Caller = Annotated[Grant, Depends(grant)]


def not_found(account_id: str) -> Problem:
    """The answer for an account the token does not reach (or without any trade)."""
    return Problem(404, f"account {account_id!r} not found", title="Account not found")


async def readable_account(
    account_id: Annotated[str, Path(min_length=1, max_length=128, pattern=PRINTABLE)],
    caller: Caller,
) -> str:
    """The path's account when the token reaches it; 404 otherwise (async: no I/O, so not a
    hop through the thread pool)."""
    if caller.account_id != account_id:
        raise not_found(account_id)
    return account_id


async def writer(caller: Caller) -> Grant:
    """The caller's grant when it may write; 403 for a read token."""
    if not caller.allows("write"):
        raise Problem(
            403,
            f"token {caller.token_id} has scope {caller.scope!r}: this route needs 'write'",
            title="Insufficient scope",
        )
    return caller


ReadableAccount = Annotated[str, Depends(readable_account)]
Writer = Annotated[Grant, Depends(writer)]

__all__ = ["Caller", "ReadableAccount", "Writer", "check_grant", "grant", "not_found"]
