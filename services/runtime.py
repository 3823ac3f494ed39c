"""What a StratLens process runs on: the shared services, the database and the bundled data.

build_services(settings) is the server's: a migrated database, the bundled series stored on
first start, the live feeds wired to the market. A one-shot command (indicator, signals,
backtest, ...) needs only the database part, in services.database_setup (prepare_database,
offline_services), which imports none of the live stack.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from caching import SharedCache
from config.settings import FeedSpec, Settings, SettingsError
from database.repositories import CandleRepository
from database.session import make_session_factory
from market.candles import iter_candles
from market.exchange_feed import ExchangeFeed
from market.feeds import Feed, RandomWalkFeed, ReplayFeed, event_interval
from market.sample_data import DEMO_SEED
from market.timeframes import Timeframe
from services.alerts import AlertService
from services.chart_layers import ChartTracks
from services.database_setup import check_writable, prepare_database
from services.live import FeedRunner, LiveMarket
from services.market_data import MarketDataService
from services.tracking import TrackingService
from services.trading_runner import TradingRunner
from strategies.data_integration import StrategyDataIntegrator
from trading.alerts import AlertCenter, AlertEvent

log = logging.getLogger("stratlens")


@dataclass
class Services:
    """Everything the dashboard and the command line share, built once per app."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    market: LiveMarket
    cache: SharedCache
    market_data: MarketDataService
    integrator: StrategyDataIntegrator
    runner: FeedRunner
    tracks: ChartTracks
    trading: TradingRunner  # paper trading's deployments on each closed candle
    alerts: AlertService  # the alerts page and the toasts
    alert_center: AlertCenter  # what the runner and the broker emit alerts to
    # the process's one trade tracker and its live view: the runner's fills, the API's and the
    # pages' go through it, so its listeners (live view, push) hear every trade made here
    tracking: TrackingService
    # what else runs for these services (a feed follower, a relay): stopped first on close
    stops: list[Callable[[], object]] = field(default_factory=list)

    def close(self) -> None:
        for stop in self.stops:
            stop()
        self.runner.stop()
        self.trading.stop()
        self.tracking.tracker.close()
        self.alert_center.close()
        self.cache.close()
        self.engine.dispose()


def build_services(settings: Settings) -> Services:
    """Migrate the database, load the bundled data on first start, and wire the live feeds."""
    engine = prepare_database(settings)
    try:
        check_writable(engine)  # feeds store every closed candle
    except BaseException:
        engine.dispose()
        raise
    sessions = make_session_factory(engine)
    market = LiveMarket()
    feeds = _make_feeds(settings, sessions, market)
    alert_center = AlertCenter.from_settings(sessions, settings.alerts)
    market.on_down = lambda symbol, status, why: alert_center.emit(
        AlertEvent(
            kind="feed_down",
            message=f"feed {symbol} {status}: {why or 'no reason given'}",
            severity="critical",
            symbol=symbol,
        )
    )
    tracking = TrackingService(sessions)
    trading = TradingRunner(
        sessions,
        cursor=lambda symbol: _cursor(market, symbol),
        notify=alert_center.emit,
        tracker=tracking.tracker,
    )
    runner = FeedRunner(
        feeds,
        market,
        sessions,
        interval=event_interval(settings.feed_speed, settings.feed_updates_per_candle),
        on_closed=trading.on_closed,
        on_forming=trading.on_forming,
    )
    cache = SharedCache.from_url(settings.redis_url)
    market_data = MarketDataService(sessions, market, cache)
    integrator = StrategyDataIntegrator(sessions, cache)
    tracks = ChartTracks(market_data, sessions=sessions)
    return Services(
        settings, engine, sessions, market, cache, market_data, integrator, runner, tracks,
        trading, AlertService(sessions), alert_center, tracking,
    )  # fmt: skip


def _cursor(market: LiveMarket, symbol: str) -> pd.Timestamp | None:
    state = market.get(symbol)
    return None if state is None else state.cursor


def _make_feeds(
    settings: Settings, sessions: sessionmaker[Session], market: LiveMarket
) -> list[tuple[Feed, str]]:
    with sessions() as session:
        repo = CandleRepository(session)
        stored: dict[str, Timeframe] = {}
        for info in repo.series():  # a symbol stored in several timeframes streams the finest
            tf = Timeframe.parse(info.timeframe)
            if info.symbol not in stored or tf < stored[info.symbol]:
                stored[info.symbol] = tf
        feeds: list[tuple[Feed, str]] = []
        for spec in settings.feeds:
            if spec.kind == "ccxt":  # the exchange has the history: nothing need be stored
                feeds.append((_exchange_feed(spec, repo), f"ccxt {spec.exchange}"))
                continue
            if spec.symbol not in stored:
                raise SettingsError(
                    "FEEDS",
                    ",".join(str(s) for s in settings.feeds),
                    f"stored symbols only for replay and random_walk"
                    f" ({', '.join(sorted(stored)) or 'none stored'}); {spec.symbol} is not stored",
                )
            feeds.append((_feed(spec, stored[spec.symbol], repo, settings), spec.kind))
        for symbol, tf in stored.items():
            if symbol not in {spec.symbol for spec in settings.feeds}:
                market.register_static(symbol, tf, repo.last_ts(symbol, tf.label))
    return feeds


def _exchange_feed(spec: FeedSpec, repo: CandleRepository) -> Feed:
    """Polls the exchange from the last bar stored in the spec's timeframe (a backfill of
    DEFAULT_LOOKBACK_BARS when none is); stored under the exchange's own symbol."""
    if spec.exchange is None or spec.timeframe is None:
        raise ValueError(f"FEEDS entry {spec}: an exchange feed needs an exchange and a timeframe")
    tf = Timeframe.parse(spec.timeframe)
    return ExchangeFeed(spec.symbol, tf, spec.exchange, repo.last_ts(spec.symbol, tf.label))


def _feed(spec: FeedSpec, tf: Timeframe, repo: CandleRepository, settings: Settings) -> Feed:
    if spec.kind == "replay":
        return ReplayFeed(
            spec.symbol,
            tf,
            repo.frame(spec.symbol, tf.label),
            replay_bars=settings.replay_bars,
            updates_per_candle=settings.feed_updates_per_candle,
            loop=True,
        )
    last = repo.frame(spec.symbol, tf.label, last=1)
    return RandomWalkFeed(
        spec.symbol,
        tf,
        next(iter_candles(last), None),
        seed=DEMO_SEED,  # the walk is keyed by symbol too: DEMO continues its stored history
        updates_per_candle=settings.feed_updates_per_candle,
    )
