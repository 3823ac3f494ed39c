"""A local stand-in for Binance's public spot API, for the exchange feed's tests (no internet).

It answers the two endpoints ccxt's binance calls for candles, in Binance's own format:
``GET /api/v3/exchangeInfo`` (what ``load_markets`` reads; ccxt is restricted to spot through
its options so it asks for nothing else) and ``GET /api/v3/klines`` (rows of
``[openTime, "open", "high", "low", "close", "volume", closeTime, "quoteVolume", trades,
"takerBase", "takerQuote", "0"]`` from ``startTime``, at most ``limit``). It serves only the bars
that have opened by its clock (the one the feed under test reads), so the last bar served is
the forming one, as on the real exchange. ``faults`` scripts answers (a 429 with Retry-After,
a 503, a 502 page, ...) consumed one per klines request before the normal answer;
``always_fail`` answers every klines request with it.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pandas as pd

from market.timeframes import from_epoch_ms

T0_MS = int(pd.Timestamp("2024-03-01", tz="UTC").value // 1_000_000)
MINUTE_MS = 60_000


class FakeClock:
    """The exchange's and the feed's "now" (epoch seconds); ``sleep`` advances it at once.

    ``limit`` sleeps at most: a feed that never reaches what a test waits for fails the test
    instead of spinning forever.
    """

    def __init__(self, now_s: float, limit: int = 100_000) -> None:
        self.now_s = now_s
        self.sleeps: list[float] = []
        self._limit = limit

    def __call__(self) -> float:
        return self.now_s

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if len(self.sleeps) > self._limit:
            raise AssertionError(f"the feed slept {self._limit} times without what we waited for")
        self.now_s += seconds


@dataclass(frozen=True)
class Answer:
    status: int
    body: object
    headers: tuple[tuple[str, str], ...] = ()


RATE_LIMITED = Answer(
    429,
    {"code": -1003, "msg": "Too many requests; current limit is 6000 request weight per 1 MINUTE."},
    (("Retry-After", "30"),),
)
INTERNAL_ERROR = Answer(
    503, {"code": -1001, "msg": "Internal error; unable to process your request. Please try again."}
)
BAD_GATEWAY = Answer(502, "<html><body><h1>502 Bad Gateway</h1></body></html>")
INVALID_SYMBOL = Answer(400, {"code": -1121, "msg": "Invalid symbol."})


def bar(i: int) -> list[float]:
    """Bar ``i`` of the fake market (1m bars from T0): open, high, low, close, volume."""
    o = 100.0 + i
    return [o, o + 2.0, o - 1.0, o + 0.5, 10.0 + i]


@dataclass
class FakeBinance:
    clock: FakeClock
    symbols: tuple[tuple[str, str], ...] = (("BTC", "USDT"),)
    timeframe_ms: int = MINUTE_MS
    # open ms -> [o, h, l, c, v]; bars with an open time after the clock are not served
    bars: dict[int, list[float]] = field(default_factory=dict)
    faults: deque[Answer] = field(default_factory=deque)
    always_fail: Answer | None = None
    requests: list[dict[str, str]] = field(default_factory=list)  # klines queries, in order
    url: str = ""

    def klines(self, query: dict[str, str]) -> list[list[object]]:
        start = int(query.get("startTime", 0))
        limit = min(int(query.get("limit", 500)), 1000)
        now_ms = self.clock() * 1000
        opens = sorted(t for t in self.bars if start <= t <= now_ms)[:limit]
        return [
            [
                t,
                *(repr(x) for x in self.bars[t][:5]),
                t + self.timeframe_ms - 1,
                "0",
                1,
                "0",
                "0",
                "0",
            ]
            for t in opens
        ]

    def exchange_info(self) -> dict[str, object]:
        return {
            "timezone": "UTC",
            "serverTime": int(self.clock() * 1000),
            "symbols": [
                {
                    "symbol": base + quote,
                    "status": "TRADING",
                    "baseAsset": base,
                    "quoteAsset": quote,
                    "baseAssetPrecision": 8,
                    "quotePrecision": 8,
                    "isSpotTradingAllowed": True,
                    "isMarginTradingAllowed": False,
                    "permissions": ["SPOT"],
                    "filters": [],
                }
                for base, quote in self.symbols
            ],
        }

    def answer(self, path: str, query: dict[str, str]) -> Answer:
        if path == "/api/v3/exchangeInfo":
            return Answer(200, self.exchange_info())
        if path != "/api/v3/klines":
            return Answer(404, {"code": -1, "msg": f"no endpoint {path}"})
        self.requests.append(query)
        if self.faults:
            return self.faults.popleft()
        if self.always_fail is not None:
            return self.always_fail
        return Answer(200, self.klines(query))

    def feed_options(self) -> dict[str, object]:
        """ExchangeFeed keywords pointing ccxt's binance at this server, spot markets only."""
        return {
            "exchange_config": {"options": {"fetchMarkets": {"types": ["spot"]}}},
            "api_urls": {"public": f"{self.url}/api/v3"},
            "clock": self.clock,
            "sleep": self.clock.sleep,
        }


def fill(server: FakeBinance, count: int) -> None:
    """Bars 0 .. count-1 (1m from T0) on the server."""
    for i in range(count):
        server.bars[T0_MS + i * MINUTE_MS] = bar(i)


def bar_open(i: int) -> pd.Timestamp:
    """Open time of bar ``i``."""
    return from_epoch_ms([T0_MS + i * MINUTE_MS])[0]


def at(i: int, seconds: float = 0.0) -> float:
    """Epoch seconds ``seconds`` into bar ``i``."""
    return (T0_MS + i * MINUTE_MS) / 1000 + seconds


def market_at_bar_9() -> FakeClock:
    """The tests' usual start: 00:09:30, bar 9 forming, bars 0..8 closed."""
    return FakeClock(at(9, 30))


def serve_bars(clock: FakeClock, count: int = 200) -> Iterator[FakeBinance]:
    """A server with bars 0 .. count-1 on ``clock``, running (a fixture's body)."""
    server = FakeBinance(clock)
    fill(server, count)
    yield from serve(server)


def serve(server: FakeBinance) -> Iterator[FakeBinance]:
    """Run ``server`` on a free local port (a fixture's body: yields it with its url set)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            answer = server.answer(parts.path, query)
            text = isinstance(answer.body, str)
            data = (answer.body if text else json.dumps(answer.body)).encode()  # type: ignore[union-attr]
            self.send_response(answer.status)
            kind = "text/html" if text else "application/json;charset=UTF-8"
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            for name, value in answer.headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(
        target=httpd.serve_forever, args=(0.05,), name="fake-binance", daemon=True
    )
    thread.start()
    server.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)
