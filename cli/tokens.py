"""API tokens: create (the secret shown once), list, revoke (docs/api.md#tokens).

app.py token create --account ft-live --scope read|write|admin [--name NOTE] [--json]
app.py token list [--account ft-live] [--json]
app.py token revoke TOKEN_ID
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from config.settings import Settings
    from database.repositories.tokens import TokenRecord
    from services.tokens import TokenService

SCOPES = ("read", "write", "admin")  # database.token_models.TOKEN_SCOPES (a test holds them equal)


def register(commands: argparse._SubParsersAction) -> None:
    token = commands.add_parser("token", help="REST API tokens: create, list, revoke")
    sub = token.add_subparsers(dest="token_command", required=True)
    create = sub.add_parser("create", help="a new token for an account (its secret shown once)")
    create.add_argument("--account", required=True, help="the account the token reaches")
    create.add_argument("--scope", required=True, choices=SCOPES,
                        help="read < write (POST trades) < admin")  # fmt: skip
    create.add_argument("--name", help="a note to tell tokens apart in `token list`")
    create.add_argument("--json", action="store_true")
    create.set_defaults(run=_create)
    listed = sub.add_parser("list", help="every token (without secrets), revoked ones marked")
    listed.add_argument("--account", help="only this account's tokens")
    listed.add_argument("--json", action="store_true")
    listed.set_defaults(run=_list)
    revoke = sub.add_parser("revoke", help="revoke a token by its id (from `token list`)")
    revoke.add_argument("token_id")
    revoke.set_defaults(run=_revoke)


@contextmanager
def _tokens(settings: Settings) -> Iterator[TokenService]:
    """The token service over the migrated database, disposed of afterwards."""
    from database.migrate import upgrade
    from database.session import make_engine, make_session_factory
    from services.tokens import TokenService

    engine = make_engine(settings.database_url)
    try:
        upgrade(engine)
        yield TokenService(make_session_factory(engine))
    finally:
        engine.dispose()


def _create(args: argparse.Namespace, settings: Settings) -> int:
    with _tokens(settings) as service:
        try:
            created = service.create(args.account, args.scope, args.name)
        except ValueError as exc:
            print(f"token create: {exc}", file=sys.stderr)
            return 2
    record = created.record
    if args.json:
        from cli.json_output import dumps

        print(dumps({**_row(record), "token": created.token}))
        return 0
    print(created.token)
    print(
        f"token {record.token_id}: {record.scope} on account {record.account_id}. The line above"
        " is its secret, shown this once: keep it (Authorization: Bearer <token>).",
        file=sys.stderr,
    )
    return 0


def _list(args: argparse.Namespace, settings: Settings) -> int:
    with _tokens(settings) as service:
        records = service.list(args.account)
    if args.json:
        from cli.json_output import dumps

        print(dumps([_row(r) for r in records]))
        return 0
    for r in records:
        state = "active" if r.active else f"revoked {r.revoked_at:%Y-%m-%d %H:%M}"
        print(
            f"{r.token_id}  {r.scope:<5}  {r.account_id:<24}  {r.created_at:%Y-%m-%d %H:%M}"
            f"  {state:<24}  {r.name or ''}".rstrip()
        )
    return 0


def _revoke(args: argparse.Namespace, settings: Settings) -> int:
    with _tokens(settings) as service:
        done = service.revoke(args.token_id)
    if not done:
        print(f"token revoke: no active token {args.token_id!r} (see token list)", file=sys.stderr)
        return 1
    print(f"token {args.token_id} revoked")
    return 0


def _row(record: TokenRecord) -> dict[str, str | None]:
    return {
        "token_id": record.token_id,
        "account_id": record.account_id,
        "scope": record.scope,
        "name": record.name,
        "created_at": record.created_at.isoformat(),
        "revoked_at": None if record.revoked_at is None else record.revoked_at.isoformat(),
    }
