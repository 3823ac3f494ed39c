"""Serving beyond this machine (issue 17, security): another address than loopback needs
STRATLENS_PASSWORD (the pages ask for it as HTTP Basic) and, for the API alone, an API token;
`app.py serve` refuses to start otherwise, naming the fix. /debug/stats: this machine as is,
another one with an admin token."""

from __future__ import annotations

import base64
import subprocess
import sys

import pytest

from cli.serve import exposure_problem
from config.settings import Settings
from services.tokens import TokenService
from tests.api.conftest import ROOT
from tests.dashboard.test_guards import LOCAL, REMOTE, app_with  # noqa: F401 (a fixture)


def settings(tmp_path, **env: str) -> Settings:
    return Settings.from_env({"STRATLENS_DATA_DIR": str(tmp_path), "LOAD_SAMPLE_DATA": "false",
                              "FEEDS": "none", **env})  # fmt: skip


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"])
def test_loopback_needs_nothing(tmp_path, host):
    assert exposure_problem(settings(tmp_path, HOST=host)) is None
    assert exposure_problem(settings(tmp_path, HOST=host), api_only=True) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "::", "example.org"])
def test_another_address_needs_the_password_and_the_api_a_token(tmp_path, host):
    problem = exposure_problem(settings(tmp_path, HOST=host))
    assert problem is not None
    assert f"HOST={host} is not a loopback address" in problem
    assert "STRATLENS_PASSWORD" in problem
    assert exposure_problem(settings(tmp_path, HOST=host, STRATLENS_PASSWORD="pw")) is None

    api_only = settings(tmp_path, HOST=host)
    assert "app.py token create" in (exposure_problem(api_only, api_only=True) or "")
    from database.session import make_session_factory
    from services.database_setup import prepare_database

    engine = prepare_database(api_only)
    try:
        tokens = TokenService(make_session_factory(engine))
        made = tokens.create("acc", "read")
        assert exposure_problem(api_only, api_only=True) is None
        tokens.revoke(made.record.token_id)
        assert exposure_problem(api_only, api_only=True) is not None  # revoked ones do not count
    finally:
        engine.dispose()


def test_app_py_serve_refuses_to_start_open_on_another_address(tmp_path):
    env = {"STRATLENS_DATA_DIR": str(tmp_path), "LOAD_SAMPLE_DATA": "false", "FEEDS": "none",
           "PATH": "/usr/bin:/bin"}  # fmt: skip
    for command in (["serve", "--host", "0.0.0.0"], ["serve-api", "--host", "0.0.0.0"]):
        done = subprocess.run(
            [sys.executable, "app.py", *command], cwd=ROOT, env=env, capture_output=True,
            text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 2, done.stderr
        assert "refusing to start: HOST=0.0.0.0 is not a loopback address" in done.stderr
        assert "STRATLENS_PASSWORD" in done.stderr


def basic(password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"me:{password}".encode()).decode()}


def test_with_a_password_the_pages_ask_for_it(app_with):  # noqa: F811 (the fixture)
    client = app_with(STRATLENS_PASSWORD="s3cret", DEBUG_STATS="1").server.test_client()
    asked = client.get("/", environ_base=REMOTE)
    assert asked.status_code == 401
    assert asked.headers["WWW-Authenticate"].startswith('Basic realm="StratLens"')
    assert client.get("/", headers=basic("wrong"), environ_base=REMOTE).status_code == 401
    assert client.get("/", headers=basic("s3cret"), environ_base=REMOTE).status_code == 200
    assert client.get("/", environ_base=LOCAL).status_code == 401  # this machine too


def test_debug_stats_from_another_machine_needs_an_admin_token(app_with):  # noqa: F811
    dash_app = app_with(DEBUG_STATS="1")
    client = dash_app.server.test_client()
    assert client.get("/debug/stats", environ_base=LOCAL).status_code == 200
    assert client.get("/debug/stats", environ_base=REMOTE).status_code == 401
    tokens = TokenService(dash_app.server.extensions["stratlens"].sessions)
    for scope, status in (("read", 403), ("write", 403), ("admin", 200)):
        token = tokens.create("acc", scope).token
        got = client.get("/debug/stats", headers={"Authorization": f"Bearer {token}"},
                         environ_base=REMOTE)  # fmt: skip
        assert got.status_code == status, scope
    assert "feeds" in got.get_json()
