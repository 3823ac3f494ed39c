"""The Dash app of StratLens: create_app(settings) builds the services, lays the pages out in
the shell, wires their callbacks and the server's extra routes (/debug/stats, /docs/metrics).

>>> app = create_app(Settings.from_env())  # the live feeds start unless start_feeds=False
>>> app.run(host=settings.host, port=settings.port)
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any
from urllib.parse import urlsplit

import dash
import diskcache
import flask

from config.settings import Settings
from dashboard import guards, shell
from dashboard.pages import alerts as alerts_page
from dashboard.pages import attribution as attribution_page
from dashboard.pages import backtest as backtest_page
from dashboard.pages import execution as execution_page
from dashboard.pages import formulas
from dashboard.pages import live as live_page
from dashboard.pages import trading as trading_page
from dashboard.warmup import WarmDiskcacheManager, WarmUp
from services.execution_views import ExecutionViews
from services.paper import PaperTrading
from services.runtime import Services, build_services
from services.tracking_views import AttributionViews
from services.trading_runner import RunnerBusyError
from services.trading_views import TradingViews

SERVER_NAME = "app"  # the Flask app's name ("Serving Flask app 'app'"), after the entry point

log = logging.getLogger("stratlens.server")


def create_app(
    settings: Settings | None = None, *, start_feeds: bool = True, warm: bool = False
) -> dash.Dash:
    """The Dash app over fresh services; `app.server.extensions['stratlens']` holds them.

    Pages: the live chart (/), the backtest page (/backtest, its runs are dash background
    callbacks run by a DiskcacheManager under the data directory), the paper trading page
    (/trading), the alerts (/alerts, and their toasts on every page), the attribution of
    every account's tracked trades (/attribution), the transaction costs of every account's
    orders (/execution), the formulas (/docs/metrics).
    ``warm``: start the warm-up (dashboard/warmup.py) in a background thread, the live page's
    first view and every strategy's backtest, so that the first requests do not pay for a
    fresh process (``app.py serve`` does); `app.server.extensions['stratlens_warmup']` holds
    it. The background runs then fork once it is done.
    """
    settings = settings or Settings.from_env()
    services = build_services(settings)
    default_symbol = settings.feeds[0].symbol if settings.feeds else None
    warmup = WarmUp(services, live_page.default_view(services.market_data, default_symbol))
    background = settings.data_dir / "background-callbacks"
    background.mkdir(parents=True, exist_ok=True)
    manager = WarmDiskcacheManager(diskcache.Cache(str(background)), warmup if warm else None)
    app = dash.Dash(
        SERVER_NAME,
        title="StratLens",
        update_title=None,  # no "Updating..." flicker in the tab title on every tick
        assets_folder=str(shell.ASSETS),
        serve_locally=True,
        background_callback_manager=manager,
        suppress_callback_exceptions=False,
    )
    live = live_page.LiveContext(services.market_data, services.tracks, settings.chart_bars)
    attribution = AttributionViews(services.tracking, services.sessions)
    execution = ExecutionViews(services.sessions, settings.data_dir)
    pages: dict[str, shell.PageBuilder] = {
        "live": lambda search: live_page.layout(
            services.market_data,
            settings.refresh_ms,
            default_symbol,
            search=search,
            accounts=services.tracks.accounts(),
        ),
        "backtest": lambda _: backtest_page.layout(services),
        "trading": lambda _: trading_layout(services),
        "alerts": lambda _: alerts_page.layout(services.alerts),
        "attribution": lambda search: attribution_layout(attribution, services, search),
        "execution": lambda search: execution_page.layout(execution.accounts(), search),
    }
    # outside a request (Dash's validation layout) every page; in one, the page asked for
    app.layout = lambda: shell.shell(
        pages,
        *requested_page(),
        toasts=alerts_page.toast_area(services.alerts.latest_id()),
    )
    shell.register_callbacks(app, pages)
    live_page.register_callbacks(app, live)
    backtest_page.register_callbacks(app, services, manager)
    alerts_page.register_callbacks(app, services.alerts)
    attribution_page.register_callbacks(app, attribution)
    execution_page.register_callbacks(app, execution)
    trading_page.register_callbacks(
        app,
        PaperTrading(services.sessions, runner=services.trading),
        TradingViews(services.sessions),
        services.market_data,
    )
    app.server.extensions["stratlens"] = services
    guards.install(
        app.server,
        max_request_bytes=settings.max_request_mb << 20,
        write_outputs=(
            *backtest_page.WRITE_OUTPUTS,
            *alerts_page.WRITE_OUTPUTS,
            *trading_page.WRITE_OUTPUTS,
        ),
        password=settings.password,
    )
    # DEBUG_STATS=1 turns it on, for this machine and admin tokens; off, it is a 404 of its
    # own, not Dash's catch-all page
    app.server.add_url_rule(
        "/debug/stats",
        "debug_stats",
        lambda: guarded_stats(services) if settings.debug_stats else flask.abort(404),
    )
    app.server.add_url_rule(
        formulas.FORMULAS_URL,
        "formulas",
        lambda: formulas.formulas_html(flask.request.args.get("theme", "dark")),
    )
    if start_feeds:
        if settings.trading_runner == "embedded":
            try:
                services.trading.start()
            except RunnerBusyError as exc:  # the pages still serve; nothing trades twice
                log.error("paper trading is not run by this process: %s", exc)
        if settings.live_feeds == "follow":  # make serve's workers: the runner runs them
            from services.feed_relay import feed_channel, follow_feeds

            channel = feed_channel(services.sessions)
            services.stops.append(follow_feeds(services.market, settings.redis_url, channel))
        else:
            services.runner.start()
    if warm:
        app.server.extensions["stratlens_warmup"] = warmup
        warmup.start()
    return app


def trading_layout(services: Services) -> Any:
    """The trading page on the stored accounts and symbols (the first symbol's timeframes)."""
    symbols = services.market_data.symbols()
    timeframes = services.market_data.timeframes(symbols[0]) if symbols else []
    return trading_page.layout(
        services.tracks.accounts(), symbols, timeframes, services.settings.refresh_ms
    )


def attribution_layout(views: AttributionViews, services: Services, search: str | None) -> Any:
    """The attribution page over the accounts with trades, the stored symbols as benchmarks."""
    symbols = services.market_data.symbols()
    return attribution_page.layout(
        views.accounts(), symbols, search, lambda account: views.benchmark_for(account, symbols)
    )


def requested_page() -> tuple[str | None, str | None]:
    """The page (of shell.PAGES) and URL query (``"?symbol=..."``) of the browser page asking
    for the layout: the browser names it in the Referer header of its /_dash-layout request
    (same origin). (None, None) outside a request (every page is laid out: Dash's validation
    layout); the live page without the header or from another origin (the route callback then
    builds the page the URL shows)."""
    if not flask.has_request_context():
        return None, None
    if not flask.request.referrer:
        return "live", None
    page = urlsplit(flask.request.referrer)
    if page.netloc != flask.request.host:
        return "live", None
    return shell.shown_page(page.path), f"?{page.query}" if page.query else None


def guarded_stats(services: Services) -> Any:
    """/debug/stats: from this machine (loopback) as is, from another one with an admin
    token (``Authorization: Bearer``): 401 without a valid one, 403 below admin."""
    if not guards.is_loopback(flask.request):
        from services.tokens import TokenService

        scheme, _, token = flask.request.headers.get("Authorization", "").partition(" ")
        grant = TokenService(services.sessions).authenticate(token.strip()) if (
            scheme.lower() == "bearer"
        ) else None  # fmt: skip
        if grant is None:
            answer = flask.jsonify({"status": 401, "detail": "an admin token is needed"})
            answer.headers["WWW-Authenticate"] = 'Bearer realm="stratlens"'
            return answer, 401
        if not grant.allows("admin"):
            return flask.jsonify({"status": 403, "detail": f"token {grant.token_id} is not "
                                  "admin"}), 403  # fmt: skip
    return debug_stats(services)


def debug_stats(services: Services) -> dict:
    """Counters of the caches and the live feeds, as JSON (GET /debug/stats when DEBUG_STATS
    is set). A feed's error is its first line only: never an SQL statement or its values."""
    cache = services.cache.stats()
    return {
        # redis: None without REDIS_URL, "up", or "down: <why>" (then cached in process)
        "chart_cache": {
            "backend": cache.backend,
            "hits": cache.hits,
            "misses": cache.misses,
            "redis": cache.redis,
        },
        "indicators": asdict(services.integrator.stats()),
        # the live charts' work: indicator and strategy updates (once per closed candle for
        # every tab), shared tick deltas and panels computed or reused, backtests run
        "live": services.tracks.stats.snapshot(),
        "feeds": [
            {
                "symbol": s.symbol,
                "timeframe": s.timeframe.label,
                "feed": s.feed_kind,
                "status": s.status,
                "cursor": None if s.cursor is None else s.cursor.isoformat(),
                "closed": s.closed_count,
                "error": None if s.error is None else s.error.splitlines()[0][:300],
                # delayed: since when, and how many closed candles wait to be stored
                "delayed_since": None if s.delayed_since is None else s.delayed_since.isoformat(),
                "backlog": s.backlog,
            }
            for s in services.market.all()
        ],
    }
