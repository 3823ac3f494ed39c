"""Settings read from environment variables, each with a working default.

An invalid value stops start-up with a SettingsError naming the variable, the value and what
is expected. See README.md ("Configuration") for the list.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

from config.choices import EXCHANGE_ID_PATTERN, SUPPORTED_TIMEFRAMES
from config.log_format import LOG_FORMATS

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = ROOT / "data"
DEFAULT_STRATEGIES_DIR = ROOT / "config" / "strategies" / "user_strategies"
FEED_KINDS = ("replay", "random_walk", "ccxt")
CCXT_FEED = "SYMBOL:ccxt:EXCHANGE:TIMEFRAME (like BTC/USDT:ccxt:binance:1m)"
_EXCHANGE_ID = re.compile(EXCHANGE_ID_PATTERN)
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class SettingsError(ValueError):
    """A configuration variable holds a value StratLens cannot use."""

    def __init__(self, variable: str, value: object, expected: str) -> None:
        super().__init__(f"{variable}={value!r} is invalid: expected {expected}")
        self.variable = variable
        self.value = value
        self.expected = expected


@dataclass(frozen=True)
class FeedSpec:
    """Which live feed drives one symbol: a stored one (replay, random_walk), or one an
    exchange serves through ccxt (``exchange`` and ``timeframe`` set, stored as it comes)."""

    symbol: str
    kind: str
    exchange: str | None = None
    timeframe: str | None = None

    def __str__(self) -> str:
        """As written in FEEDS."""
        if self.kind == "ccxt":
            return f"{self.symbol}:ccxt:{self.exchange}:{self.timeframe}"
        return f"{self.symbol}:{self.kind}"


@dataclass(frozen=True)
class AlertSettings:
    """Where alerts go besides the dashboard: a signed webhook and e-mail (both off unset)."""

    webhook_url: str | None = None
    webhook_secret: str | None = None  # HMAC-SHA256 key of the webhook's signature header
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str = "stratlens@localhost"
    email_to: tuple[str, ...] = ()
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AlertSettings:
        url = env.get("ALERT_WEBHOOK_URL", "").strip() or None
        secret = env.get("ALERT_WEBHOOK_SECRET") or None
        if url is not None:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise SettingsError("ALERT_WEBHOOK_URL", url, "http(s)://HOST[:PORT]/PATH")
            if secret is None:  # an unsigned webhook could be forged by anyone who finds it
                raise SettingsError(
                    "ALERT_WEBHOOK_SECRET", "", "a secret when ALERT_WEBHOOK_URL is set"
                )
        host = env.get("SMTP_HOST", "").strip() or None
        recipients = tuple(a.strip() for a in env.get("ALERT_EMAIL_TO", "").split(",") if a.strip())
        for address in recipients:
            _email("ALERT_EMAIL_TO", address)
        if host is not None and not recipients:
            raise SettingsError("ALERT_EMAIL_TO", "", "one or more addresses when SMTP_HOST is set")
        user = env.get("SMTP_USER", "").strip() or None
        password = env.get("SMTP_PASSWORD") or None
        if (user is None) != (password is None):
            raise SettingsError(
                "SMTP_USER" if user is None else "SMTP_PASSWORD",
                "",
                "SMTP_USER and SMTP_PASSWORD together",
            )
        return cls(
            webhook_url=url,
            webhook_secret=secret,
            smtp_host=host,
            smtp_port=_int("SMTP_PORT", env.get("SMTP_PORT", "25"), 1, 65535),
            smtp_from=_email("SMTP_FROM", env.get("SMTP_FROM", "stratlens@localhost").strip()),
            email_to=recipients,
            smtp_user=user,
            smtp_password=password,
            smtp_starttls=_bool("SMTP_STARTTLS", env.get("SMTP_STARTTLS", "false")),
        )


@dataclass(frozen=True)
class Settings:
    database_url: str
    redis_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8050
    feeds: tuple[FeedSpec, ...] = field(default_factory=tuple)
    feed_speed: float = 1.0  # closed candles per second, per feed
    feed_updates_per_candle: int = 4  # forming-candle updates between two closes
    replay_bars: int = 300  # bars held back at start and streamed by the replay feed
    refresh_ms: int = 1000  # browser refresh interval
    chart_bars: int = 1000  # most bars one live chart holds (the browser redraws them all)
    log_level: str = "INFO"
    log_format: str = "text"  # or "json": one JSON object per log line (config/log_format.py)
    data_dir: Path = DEFAULT_DATA_DIR
    load_sample_data: bool = True
    strategies_dir: Path = DEFAULT_STRATEGIES_DIR  # the user's strategy configs (JSON)
    retention_days: int = 90  # backtest (analysis) runs older than this lose their signals
    max_request_mb: int = 8  # a larger request body is refused (413) before it is read
    debug_stats: bool = False  # serve GET /debug/stats (counters, feed states)
    # the pages ask for it (HTTP Basic); needed to serve on an address other than loopback
    password: str | None = field(default=None, repr=False)
    # paper trading's runner: in this process ("embedded") or `app.py runner` ("external")
    trading_runner: str = "embedded"
    # the live feeds: run by this process ("run"), or followed through Redis ("follow": the
    # web workers of make serve, whose runner process runs them; services/feed_relay.py)
    live_feeds: str = "run"
    web_concurrency: int = 2  # make serve (app.py serve-prod): gunicorn's worker processes
    alerts: AlertSettings = field(default_factory=AlertSettings)  # webhook, e-mail

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        data_dir = Path(env.get("STRATLENS_DATA_DIR", str(DEFAULT_DATA_DIR)))
        return cls(
            database_url=_database_url(env.get("DATABASE_URL"), data_dir),
            redis_url=_redis_url(env.get("REDIS_URL")),
            host=_non_empty("HOST", env.get("HOST", "127.0.0.1")),
            port=_int("PORT", env.get("PORT", "8050"), 1, 65535),
            feeds=_feeds(env.get("FEEDS", "SP500:replay,NASDAQ:replay,DEMO:random_walk")),
            feed_speed=_float("FEED_SPEED", env.get("FEED_SPEED", "1"), 0.01, 1000),
            feed_updates_per_candle=_int(
                "FEED_UPDATES_PER_CANDLE", env.get("FEED_UPDATES_PER_CANDLE", "4"), 0, 100
            ),
            replay_bars=_int("REPLAY_BARS", env.get("REPLAY_BARS", "300"), 1, 10_000_000),
            refresh_ms=_int("REFRESH_MS", env.get("REFRESH_MS", "1000"), 100, 3_600_000),
            chart_bars=_int("CHART_BARS", env.get("CHART_BARS", "1000"), 10, 1_000_000),
            log_level=_choice("LOG_LEVEL", env.get("LOG_LEVEL", "INFO"), LOG_LEVELS),
            log_format=_choice(
                "LOG_FORMAT", env.get("LOG_FORMAT", "text"), tuple(f.upper() for f in LOG_FORMATS)
            ).lower(),
            data_dir=data_dir,
            load_sample_data=_bool("LOAD_SAMPLE_DATA", env.get("LOAD_SAMPLE_DATA", "true")),
            strategies_dir=Path(env.get("STRATEGIES_DIR", str(DEFAULT_STRATEGIES_DIR))),
            retention_days=_int(
                "SIGNAL_RETENTION_DAYS", env.get("SIGNAL_RETENTION_DAYS", "90"), 0, 100_000
            ),
            max_request_mb=_int("MAX_REQUEST_MB", env.get("MAX_REQUEST_MB", "8"), 1, 1024),
            debug_stats=_bool("DEBUG_STATS", env.get("DEBUG_STATS", "false")),
            password=env.get("STRATLENS_PASSWORD") or None,
            trading_runner=_choice(
                "TRADING_RUNNER", env.get("TRADING_RUNNER", "embedded"), TRADING_RUNNERS
            ).lower(),
            web_concurrency=_int("WEB_CONCURRENCY", env.get("WEB_CONCURRENCY", "2"), 1, 64),
            alerts=AlertSettings.from_env(env),
            live_feeds=_live_feeds(
                env.get("LIVE_FEEDS", "run"), env.get("REDIS_URL"), env.get("TRADING_RUNNER")
            ),
        )

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)

    @property
    def log_level_number(self) -> int:
        return logging.getLevelNamesMapping()[self.log_level]


def _database_url(value: str | None, data_dir: Path) -> str:
    if not value:
        return f"sqlite:///{data_dir / 'stratlens.db'}"
    scheme = urlsplit(value).scheme
    if scheme not in ("sqlite", "postgresql+psycopg2", "postgresql"):
        raise SettingsError(
            "DATABASE_URL", value, "sqlite:///PATH or postgresql+psycopg2://USER@HOST:PORT/DB"
        )
    if scheme == "postgresql":
        # SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3; we ship psycopg2
        value = "postgresql+psycopg2" + value[len("postgresql") :]
    return value


def _redis_url(value: str | None) -> str | None:
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("redis", "rediss", "unix") or not (parts.hostname or parts.path):
        raise SettingsError("REDIS_URL", value, "redis://HOST:PORT/DB (or unset for no Redis)")
    return value


def _non_empty(name: str, value: str) -> str:
    if not value.strip():
        raise SettingsError(name, value, "a non-empty value")
    return value.strip()


def _int(name: str, value: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise SettingsError(name, value, f"an integer from {low} to {high}") from None
    if not low <= number <= high:
        raise SettingsError(name, value, f"an integer from {low} to {high}")
    return number


def _float(name: str, value: str, low: float, high: float) -> float:
    try:
        number = float(value)
    except ValueError:
        raise SettingsError(name, value, f"a number from {low:g} to {high:g}") from None
    if not low <= number <= high:  # also rejects nan
        raise SettingsError(name, value, f"a number from {low:g} to {high:g}")
    return number


TRADING_RUNNERS = ("EMBEDDED", "EXTERNAL")  # _choice compares in upper case
LIVE_FEEDS = ("RUN", "FOLLOW")


def _live_feeds(value: str, redis_url: str | None, trading_runner: str | None) -> str:
    mode = _choice("LIVE_FEEDS", value, LIVE_FEEDS).lower()
    if mode == "follow" and not redis_url:
        raise SettingsError(
            "LIVE_FEEDS", value, "run, unless REDIS_URL is set (follow reads the feeds there)"
        )
    if mode == "follow" and (trading_runner or "").strip().lower() != "external":
        raise SettingsError(
            "LIVE_FEEDS", value,
            "run, unless TRADING_RUNNER=external (the process that runs the feeds trades on them)",
        )  # fmt: skip
    return mode


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value.strip().upper() not in allowed:
        raise SettingsError(name, value, f"one of {', '.join(allowed)}")
    return value.strip().upper()


def _bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise SettingsError(name, value, "true or false")


def _email(name: str, value: str) -> str:
    local, at, domain = value.partition("@")
    if not at or not local or not domain or any(c.isspace() or c in ",<>" for c in value):
        raise SettingsError(name, value, "an e-mail address such as alerts@example.com")
    return value


def _feeds(value: str) -> tuple[FeedSpec, ...]:
    expected = (
        f"SYMBOL:KIND[,SYMBOL:KIND...] with KIND one of {', '.join(FEED_KINDS[:-1])},"
        f" or {CCXT_FEED}, or 'none'"
    )
    if value.strip().lower() == "none":
        return ()
    specs: list[FeedSpec] = []
    for item in value.split(","):
        parts = [part.strip() for part in item.strip().split(":")]
        if "ccxt" in parts[1:]:
            spec = _ccxt_feed(value, parts)
        else:
            symbol, sep, kind = item.strip().partition(":")
            if not sep or not symbol.strip() or kind.strip() not in FEED_KINDS:
                raise SettingsError("FEEDS", value, expected)
            spec = FeedSpec(symbol.strip(), kind.strip())
        if any(s.symbol == spec.symbol for s in specs):
            raise SettingsError("FEEDS", value, f"each symbol once ({spec.symbol} repeats)")
        specs.append(spec)
    return tuple(specs)


def _ccxt_feed(value: str, parts: list[str]) -> FeedSpec:
    """SYMBOL:ccxt:EXCHANGE:TIMEFRAME; the symbol may hold colons itself (ccxt writes a
    perpetual swap BTC/USDT:USDT), so the kind is found from the right."""
    at = len(parts) - 1 - parts[::-1].index("ccxt")
    symbol, rest = ":".join(parts[:at]), parts[at + 1 :]
    item = ":".join(parts)
    if not symbol:
        problem = "the symbol is missing"
    elif len(rest) < 2 or not all(rest):
        problem = "the exchange or the timeframe is missing"
    elif len(rest) > 2:
        problem = f"{':'.join(rest[2:])!r} follows the timeframe"
    elif not _EXCHANGE_ID.match(rest[0]):
        problem = f"{rest[0]!r} is not a ccxt exchange id (lowercase, like binance or kraken)"
    elif rest[1] not in SUPPORTED_TIMEFRAMES:
        problem = f"timeframe {rest[1]!r} is not one of {', '.join(SUPPORTED_TIMEFRAMES)}"
    else:
        return FeedSpec(symbol, "ccxt", exchange=rest[0], timeframe=rest[1])
    raise SettingsError("FEEDS", value, f"{CCXT_FEED} for an exchange feed: in {item!r} {problem}")
