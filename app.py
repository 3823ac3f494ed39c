"""StratLens: create_app(settings) and the command line.

python app.py                      serve the dashboard (default command)
python app.py import FILE --symbol SYM --timeframe TF [--skip-invalid]
python app.py db upgrade           apply database migrations

The commands live in cli/ (one module per group); app.py hands them create_app.
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import cli
from config.settings import Settings

if TYPE_CHECKING:
    import dash

    from services.runtime import Services

ASSETS = Path(__file__).resolve().parent / "dashboard" / "assets"


def create_app(settings: Settings | None = None, *, start_feeds: bool = True) -> dash.Dash:
    """The Dash app over fresh services; `app.server.extensions['stratlens']` holds them.

    Pages: the live chart (/), the backtest page (/backtest, its runs are dash background
    callbacks run by a DiskcacheManager under the data directory), the formulas (/formulas).
    """
    # imported here: `app.py --help` and the other commands never load the dashboard
    import dash
    import diskcache

    from dashboard import backtest as backtest_page
    from dashboard import live as live_page
    from dashboard import live_panels, shell
    from dashboard.live import LiveContext
    from services.runtime import build_services

    settings = settings or Settings.from_env()
    services = build_services(settings)
    background = settings.data_dir / "background-callbacks"
    background.mkdir(parents=True, exist_ok=True)
    manager = dash.DiskcacheManager(diskcache.Cache(str(background)))
    app = dash.Dash(
        __name__,
        title="StratLens",
        update_title=None,  # no "Updating..." flicker in the tab title on every tick
        assets_folder=str(ASSETS),
        serve_locally=True,
        background_callback_manager=manager,
        suppress_callback_exceptions=False,
    )
    default_symbol = settings.feeds[0].symbol if settings.feeds else None
    live = LiveContext(services.market_data, services.tracks, settings.chart_bars)
    app.layout = lambda: shell.shell(
        live_page.layout(services.market_data, settings.refresh_ms, default_symbol),
        backtest_page.layout(services),
    )
    shell.register_callbacks(app)
    live_page.register_callbacks(app, live)
    live_panels.register_callbacks(app, services.tracks)
    backtest_page.register_callbacks(app, services, manager)
    app.server.extensions["stratlens"] = services
    app.server.add_url_rule("/debug/stats", "debug_stats", lambda: debug_stats(services))
    app.server.add_url_rule(shell.FORMULAS_URL, "formulas", shell.formulas_html)
    if start_feeds:
        services.runner.start()
    return app


def debug_stats(services: Services) -> dict:
    """Counters of the caches and the live feeds, as JSON (GET /debug/stats)."""
    cache = services.cache.stats()
    return {
        "chart_cache": {"backend": cache.backend, "hits": cache.hits, "misses": cache.misses},
        "indicators": asdict(services.integrator.stats()),
        "feeds": [
            {
                "symbol": s.symbol,
                "timeframe": s.timeframe.label,
                "feed": s.feed_kind,
                "status": s.status,
                "cursor": None if s.cursor is None else s.cursor.isoformat(),
                "closed": s.closed_count,
                "error": s.error,
            }
            for s in services.market.all()
        ],
    }


def main(argv: list[str] | None = None) -> int:
    """The command line (cli.main); its serve command runs create_app."""
    return cli.main(argv, create_app=create_app)


if __name__ == "__main__":
    sys.exit(main())
