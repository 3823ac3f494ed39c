"""The serve commands: ``serve`` (the default), the dashboard on HOST:PORT until interrupted
(Flask's server); ``serve-api``, the dashboard and the REST API in one ASGI app under uvicorn
(``--api-only``: the API alone); ``serve-prod`` (cli/production.py), the production shape
under gunicorn with the runner as its own process."""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING, Any

from cli.common import bounded, configuration_error
from config.settings import SettingsError

if TYPE_CHECKING:
    from config.settings import Settings

log = logging.getLogger("stratlens")


def register(commands: argparse._SubParsersAction) -> None:
    serve = commands.add_parser("serve", help="serve the dashboard (default)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=bounded(int, 1, 65535))
    serve.set_defaults(run=_serve)
    api = commands.add_parser(
        "serve-api", help="the dashboard and the REST API (/api) in one ASGI process (uvicorn)"
    )
    api.add_argument("--host")
    api.add_argument("--port", type=bounded(int, 1, 65535))
    api.add_argument("--api-only", action="store_true", help="serve the API without the pages")
    api.set_defaults(run=_serve_api)
    from cli import production  # serve-prod: make serve's supervisor, in its own module

    production.register(commands)


def exposure_problem(settings: Settings, *, api_only: bool = False) -> str | None:
    """Why serving on ``settings.host`` would leave the app open, or None. Loopback is the
    machine's own user; any other address needs STRATLENS_PASSWORD for the pages (the API's
    routes need a token of their own) and, for the API alone, at least one API token."""
    if _is_loopback(settings.host):
        return None
    where = f"HOST={settings.host} is not a loopback address"
    if not api_only:
        if settings.password is None:
            return (
                f"{where}: set STRATLENS_PASSWORD (the pages then ask for it) to serve there,"
                " or serve on 127.0.0.1"
            )
        return None
    from database.session import make_session_factory
    from services.database_setup import prepare_database
    from services.tokens import TokenService

    engine = prepare_database(settings)
    try:
        active = [t for t in TokenService(make_session_factory(engine)).list() if t.active]
    finally:
        engine.dispose()
    if not active:
        return (
            f"{where}: no API token exists (every route would refuse every caller): create one"
            " with `app.py token create --account ACC --scope read`, or serve on 127.0.0.1"
        )
    return None


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve to any address


def _refused(problem: str) -> int:
    import sys

    print(f"refusing to start: {problem}", file=sys.stderr)
    return 2


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    """Build the dashboard and run its server (dash is imported here, by this command only)."""
    from dashboard.server import create_app

    settings = settings.with_overrides(
        host=args.host or settings.host, port=args.port or settings.port
    )
    if (problem := exposure_problem(settings)) is not None:
        return _refused(problem)
    try:
        app = create_app(settings, warm=True)  # the first requests do not pay start-up
    except SettingsError as exc:
        return configuration_error(exc)
    log.info("StratLens on http://%s:%d/", settings.host, settings.port)
    app.run(host=settings.host, port=settings.port, debug=False)
    return 0


def asgi_app(settings: Settings, *, api_only: bool = False, warm: bool = False) -> Any:
    """The ASGI app of ``serve-api``: the API's routes under /api and, unless ``api_only``,
    the Dash app's Flask server at / (api/asgi.py), over one engine."""
    from api import create_api

    limit = settings.max_request_mb << 20
    if api_only:
        from database.session import make_session_factory
        from services.database_setup import prepare_database

        sessions = make_session_factory(prepare_database(settings))
        return create_api(sessions, max_request_bytes=limit, redis_url=settings.redis_url)
    from api.asgi import with_pages
    from dashboard.server import create_app

    dash_app = create_app(settings, warm=warm)
    services = dash_app.server.extensions["stratlens"]
    from services.metrics import time_trading
    from services.paper import PaperTrading

    if settings.trading_runner == "embedded":  # /metrics: the lag of this process's runner
        time_trading(services)
    api = create_api(
        services.sessions, max_request_bytes=limit, redis_url=settings.redis_url,
        alert_center=services.alert_center, market=services.market, tracking=services.tracking,
        paper=PaperTrading(
            services.sessions, runner=services.trading, tracker=services.tracking.tracker
        ),
    )  # fmt: skip
    return with_pages(api, dash_app.server)


def _serve_api(args: argparse.Namespace, settings: Settings) -> int:
    """The pages and the API under uvicorn (imported here, by this command only)."""
    import uvicorn

    settings = settings.with_overrides(
        host=args.host or settings.host, port=args.port or settings.port
    )
    try:
        problem = exposure_problem(settings, api_only=args.api_only)
        if problem is not None:
            return _refused(problem)
        app = asgi_app(settings, api_only=args.api_only, warm=not args.api_only)
    except SettingsError as exc:
        return configuration_error(exc)
    where = f"http://{settings.host}:{settings.port}"
    log.info("StratLens API on %s/api/v1 (docs %s/api/docs)", where, where)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,  # the app's logging as configured; uvicorn's loggers propagate to it
        access_log=settings.log_level == "DEBUG",  # a line per request: noise otherwise
        server_header=False,
    )
    return 0
