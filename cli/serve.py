"""The serve command (the default): the dashboard on HOST:PORT until interrupted."""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING

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


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    """Build the dashboard and run its server (dash is imported here, by this command only)."""
    from dashboard.server import create_app

    settings = settings.with_overrides(
        host=args.host or settings.host, port=args.port or settings.port
    )
    try:
        app = create_app(settings, warm=True)  # the first requests do not pay start-up
    except SettingsError as exc:
        return configuration_error(exc)
    log.info("StratLens on http://%s:%d/", settings.host, settings.port)
    app.run(host=settings.host, port=settings.port, debug=False)
    return 0
