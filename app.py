"""StratLens: create_app(settings) and the command line.

python app.py                      serve the dashboard (default command)
python app.py import FILE --symbol SYM --timeframe TF [--skip-invalid]
python app.py db upgrade           apply database migrations

The commands live in cli/ (one module per group); the Dash app in dashboard/server.py.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from cli import main

if TYPE_CHECKING:
    import dash

    from config.settings import Settings


def create_app(settings: Settings | None = None, *, start_feeds: bool = True) -> dash.Dash:
    """The dashboard (dashboard.server.create_app), for a WSGI server: ``app.create_app()``."""
    from dashboard.server import create_app as build  # not at import: the commands stay light

    return build(settings, start_feeds=start_feeds)


__all__ = ["create_app", "main"]

if __name__ == "__main__":
    sys.exit(main())
