"""API tokens (services/tokens.py) on SQLite and PostgreSQL: stored hashed, the secret shown
once, scopes ordered, revoked tokens refused; `app.py token` as real processes."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from sqlalchemy import select

from cli.tokens import SCOPES
from database.repositories.tokens import TOKENS
from database.token_models import TOKEN_SCOPES
from services.tokens import Grant, TokenService
from tests.cli.test_paper_cli import app, query


def test_a_token_is_stored_as_the_sha256_of_its_secret_only(session_factory):
    tokens = TokenService(session_factory)
    created = tokens.create("acc1", "write", "bot")
    assert created.token.startswith(f"slt_{created.record.token_id}_")
    with session_factory() as session:
        (row,) = session.execute(select(TOKENS)).mappings().all()
    text = created.token[len("slt_") + 12 + 1 :]
    raw = base64.urlsafe_b64decode(text + "=")
    assert len(raw) == 32
    assert row["secret_sha256"] == hashlib.sha256(raw).hexdigest()
    assert text not in str(dict(row))
    assert (row["account_id"], row["scope"], row["name"]) == ("acc1", "write", "bot")
    assert tokens.authenticate(created.token) == Grant(created.record.token_id, "acc1", "write")


def test_wrong_malformed_and_revoked_tokens_are_refused(session_factory):
    tokens = TokenService(session_factory)
    created = tokens.create("acc1", "read")
    token = created.token
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    # the same secret spelt otherwise: the last character's unused bits changed
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    value = alphabet.index(token[-1])
    respelt = token[:-1] + alphabet[value ^ 1]
    for bad in (flipped, respelt, token + "x", token[:-1], "", "Bearer " + token,
                token.replace("slt_", "")):  # fmt: skip
        assert tokens.authenticate(bad) is None, bad
    other = tokens.create("acc1", "read")
    assert tokens.revoke(created.record.token_id) is True
    assert tokens.revoke(created.record.token_id) is False  # already revoked
    assert tokens.revoke("000000000000") is False
    assert tokens.authenticate(token) is None
    assert tokens.authenticate(other.token) is not None  # only the one revoked
    listed = tokens.list("acc1")
    assert [(r.token_id, r.active) for r in listed] == [
        (created.record.token_id, False),
        (other.record.token_id, True),
    ]


def test_scopes_allow_what_the_lower_ones_allow():
    assert TOKEN_SCOPES == SCOPES == ("read", "write", "admin")
    allowed = {s: [w for w in SCOPES if Grant("x", "a", s).allows(w)] for s in SCOPES}
    assert allowed == {
        "read": ["read"],
        "write": ["read", "write"],
        "admin": ["read", "write", "admin"],
    }


@pytest.mark.parametrize(
    ("account", "scope"), [("", "read"), ("acc", "owner"), ("x" * 129, "read")]
)
def test_a_bad_account_or_scope_is_refused(session_factory, account, scope):
    with pytest.raises(ValueError, match=r"account|scope"):
        TokenService(session_factory).create(account, scope)


def test_token_commands_create_list_and_revoke(tmp_path):
    data = tmp_path / "data"
    made = app(data, "token", "create", "--account", "acc1", "--scope", "read", "--name", "nb")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("slt_")
    assert "shown this once" in made.stderr
    token_id = token[4:16]
    listed = app(data, "token", "list", "--json")
    (row,) = json.loads(listed.stdout)
    assert (row["token_id"], row["account_id"], row["scope"], row["name"]) == (
        token_id, "acc1", "read", "nb",
    )  # fmt: skip
    assert row["revoked_at"] is None
    assert "token" not in row
    assert token[17:] not in str(query(data, "SELECT * FROM api_tokens"))
    assert app(data, "token", "revoke", token_id).returncode == 0
    again = app(data, "token", "revoke", token_id)
    assert again.returncode == 1
    assert "no active token" in again.stderr
    assert "revoked" in app(data, "token", "list").stdout
    bad = app(data, "token", "create", "--account", "acc1", "--scope", "owner")
    assert bad.returncode == 2
    assert "invalid choice" in bad.stderr
