"""StratLens: create_app(settings) and the command line.

python app.py                      serve the dashboard (default command)
python app.py import FILE --symbol SYM --timeframe TF [--skip-invalid]
python app.py db upgrade           apply database migrations
python app.py serve-api            the dashboard and the REST API (/api) under uvicorn

The commands live in cli/ (one module per group); the Dash app in dashboard/server.py.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from cli import main

if TYPE_CHECKING:
    import dash

    from config.settings import Settings


def create_app(settings: Settings | None = None, *, start_feeds: bool = True) -> dash.Dash:
    """The dashboard (dashboard.server.create_app), for a WSGI server: ``app.create_app()``."""
    from dashboard.server import create_app as build  # not at import: the commands stay light

    return build(settings, start_feeds=start_feeds)


def create_asgi_app(settings: Settings | None = None) -> Any:
    """The pages and the REST API as one ASGI app (cli.serve.asgi_app), for an ASGI server:
    ``uvicorn --factory app:create_asgi_app``."""
    from cli.serve import asgi_app
    from config.settings import Settings

    return asgi_app(settings or Settings.from_env())


__all__ = ["create_app", "create_asgi_app", "main"]

if __name__ == "__main__":
    code = main()
    from cli.process_end import end_command

    end_command()
    sys.exit(code)
