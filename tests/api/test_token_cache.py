"""Verified tokens kept in memory (services/tokens.py): a token seen before costs no query; a
revocation is honoured at once in the process that revokes and within REVOCATION_CHECK_S
in the others (`app.py token revoke` as a real process against a real server)."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import event

from database.repositories.tokens import TokenRepository
from services.tokens import REVOCATION_CHECK_S, TokenService
from tests.api.conftest import ROOT
from tests.api.test_server import environment, served  # noqa: F401 (a fixture)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def statements(engine):
    """The SQL statements the engine runs (appended as they run)."""
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


def _revoke_elsewhere(sessions, token_id: str) -> None:
    """As another process's `token revoke`: the row only (this process's services not told)."""
    with sessions.begin() as session:
        assert TokenRepository(session).revoke(token_id, datetime.now(UTC))


def test_a_kept_token_costs_no_query_until_the_revocation_check(session_factory, statements):
    clock = Clock()
    tokens = TokenService(session_factory, clock=clock)
    made = tokens.create("acc1", "write")
    grant = tokens.authenticate(made.token)
    assert grant is not None
    assert (grant.account_id, grant.scope) == ("acc1", "write")
    assert tokens.kept(made.token) == grant
    statements.clear()
    for _ in range(5):
        assert tokens.authenticate(made.token) == grant
    assert statements == []  # from memory
    clock.now += REVOCATION_CHECK_S
    assert tokens.kept(made.token) is None  # a check is due: the caller asks authenticate
    assert tokens.authenticate(made.token) == grant
    queries = [s for s in statements if not s.upper().startswith("BEGIN")]  # SQLite's BEGIN
    assert len(queries) == 1  # the revoked tokens counted, no token looked up
    assert "count" in queries[0].lower()
    other = tokens.create("acc1", "read")
    assert tokens.kept(other.token) is None  # never verified: not kept
    for token in (made.token, other.token):  # a wrong secret stays wrong, kept token or not
        wrong = token[:-2] + ("B" if token[-2] == "A" else "A") + token[-1]
        assert tokens.authenticate(wrong) is None


def test_a_revocation_in_another_process_is_honoured_within_the_check(session_factory):
    clock = Clock()
    tokens = TokenService(session_factory, clock=clock)
    made = tokens.create("acc1", "read")
    kept = tokens.create("acc1", "read")
    assert tokens.authenticate(made.token) is not None
    assert tokens.authenticate(kept.token) is not None
    _revoke_elsewhere(session_factory, made.record.token_id)
    clock.now += REVOCATION_CHECK_S * 0.9
    assert tokens.authenticate(made.token) is not None  # within the bound: still kept
    clock.now += REVOCATION_CHECK_S * 0.1
    assert tokens.authenticate(made.token) is None  # counted: every kept token forgotten
    assert tokens.authenticate(kept.token) is not None  # the others verified again
    assert tokens.kept(made.token) is None


def test_a_revocation_in_this_process_is_honoured_at_once_by_every_service(session_factory):
    clock = Clock()
    serving, revoking = TokenService(session_factory, clock=clock), TokenService(session_factory)
    made = serving.create("acc1", "admin")
    assert serving.authenticate(made.token) is not None
    assert revoking.revoke(made.record.token_id) is True
    assert serving.kept(made.token) is None
    assert serving.authenticate(made.token) is None  # no clock advanced


def test_a_lookup_that_raced_a_revocation_is_not_kept(session_factory):
    clock = Clock()
    tokens = TokenService(session_factory, clock=clock)
    made = tokens.create("acc1", "read")
    verify = tokens._verify

    def verify_then_revoke(token: str):  # the row read active, then revoked meanwhile
        found = verify(token)
        tokens._verify = verify  # type: ignore[method-assign]
        _revoke_elsewhere(session_factory, made.record.token_id)
        clock.now += REVOCATION_CHECK_S
        assert tokens.authenticate(made.token) is None  # a request counting the revocation
        return found

    tokens._verify = verify_then_revoke  # type: ignore[method-assign]
    assert tokens.authenticate(made.token) is not None  # answered before the revocation
    assert tokens.kept(made.token) is None  # but not kept past it
    assert tokens.authenticate(made.token) is None


@pytest.mark.slow
def test_token_revoke_reaches_a_running_server_within_the_bound(served):  # noqa: F811
    client, data = served

    def app(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "app.py", *args], cwd=ROOT, env=environment(data),
            capture_output=True, text=True, timeout=120, check=True,
        )  # fmt: skip
        return done.stdout.strip()

    token = app("token", "create", "--account", "bot", "--scope", "read")
    auth = {"Authorization": f"Bearer {token}"}
    path = "/api/v1/performance/bot/trades"
    for _ in range(3):  # verified, then kept
        assert client.get(path, headers=auth).status_code == 200
    app("token", "revoke", token.split("_")[1])
    revoked = time.monotonic()
    bound = REVOCATION_CHECK_S + 5  # the check, and a loaded machine's request
    while (answer := client.get(path, headers=auth)).status_code == 200:
        assert time.monotonic() - revoked < bound, "the revoked token is still accepted"
        time.sleep(0.05)
    assert answer.status_code == 401
    assert client.get(path, headers=auth).status_code == 401
