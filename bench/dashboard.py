"""The trader's dashboard: initial response over 1,000,000 candles with and without level of
detail, and the live tick with three strategies and four indicators shown, in one run.

    python bench/dashboard.py [--big 1000000] [--bars 5000] [--rounds 60]

Every request goes through the real Dash app (Flask test client -> /_dash-update-component
-> callback -> JSON), on SQLite in a temporary folder, as a browser sends it.

1. Initial response for a chart of --big 1m candles: the build callback with the level-of-
   detail switch off (every candle in the figure: what a chart without LOD sends) and on
   (at most 2,000 OHLC buckets). Goals: LOD response <= 500 KB and >= 100x smaller.
2. Live refresh of a chart of --bars 1m candles with EMA(20), Bollinger(20, 2), RSI(14) and
   MACD(12, 26, 9) and three strategies (EMA crossover, RSI reversion, MACD cross; both
   directions) switched on: the interval callback after each feed event (forming updates
   and closes), against the naive way (rebuilding the whole figure, layers included, with a
   fresh process state). Goals: <= 2 KB per tick and <= 5 ms server time per tick (median;
   close ticks are printed separately).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._dash_client import app_over, build_payload, live_tick, post
from dashboard.pages.live.view_state import ViewState

GOAL_LOD_BYTES = 500 * 1024
GOAL_LOD_RATIO = 100.0
GOAL_TICK_BYTES = 2048
GOAL_TICK_MS = 5.0
INDICATORS = ("ema(timeperiod=20)", "bbands", "rsi", "macd")
STRATEGIES = (
    "ema_crossover(direction=both,fast=12,slow=26)",
    "rsi_reversion(direction=both)",
    "macd_cross(direction=both)",
)


def lod_section(big: int) -> list[tuple[str, bool, str]]:
    print(f"\n1. initial response, chart of {big:,} 1m candles")
    app, client = app_over("BIG", big, replay=10, chart_bars=min(big, 1_000_000))
    services = app.server.extensions["stratlens"]
    rows = []
    sizes = {}
    for lod in (False, True):
        view = ViewState(symbol="BIG", timeframe="1m", lod=lod)
        post(client, build_payload(app, view))  # warm: the track holds the history
        elapsed, size, _ = post(client, build_payload(app, view))
        sizes[lod] = size
        label = "level of detail (<= 2,000 buckets)" if lod else "every candle (no LOD)"
        print(f"   {label:<38}{size:>14,} bytes {elapsed * 1e3:>10.1f} ms")
    services.close()
    ratio = sizes[False] / sizes[True]
    rows.append(
        (
            "LOD initial response <= 500 KB",
            sizes[True] <= GOAL_LOD_BYTES,
            f"{sizes[True] / 1024:,.1f} KB",
        )
    )
    rows.append(
        (
            f"LOD >= {GOAL_LOD_RATIO:g}x smaller than every candle",
            ratio >= GOAL_LOD_RATIO,
            f"{ratio:,.0f}x ({sizes[False] / 1e6:,.1f} MB -> {sizes[True] / 1e3:,.1f} kB)",
        )
    )
    return rows


def tick_section(bars: int, rounds: int) -> list[tuple[str, bool, str]]:
    print(f"\n2. live refresh, chart of {bars:,} 1m candles, 4 indicators, 3 strategies")
    app, client = app_over("LIVE", bars + rounds, replay=rounds, chart_bars=bars)
    services = app.server.extensions["stratlens"]
    view = ViewState(symbol="LIVE", timeframe="1m", indicators=INDICATORS, strategies=STRATEGIES)
    view, problems = ViewState.from_query(view.to_query())  # canonical specs
    assert not problems, problems
    build = build_payload(app, view)

    naive_time, naive_size = [], []
    for _ in range(5):
        # the naive dashboard recomputes everything for each refresh
        services.cache.clear()
        services.tracks.clear()
        elapsed, size, body = post(client, build)
        naive_time.append(elapsed)
        naive_size.append(size)
    chart_state = body["response"]["chart-state"]["data"]

    ticks: dict[str, tuple[list[float], list[int]]] = {"forming": ([], []), "close": ([], [])}
    for _ in range(rounds * 5):
        services.runner.step()
        chart_state = live_tick(client, app, view, chart_state, ticks)
    services.close()

    naive_t, naive_b = statistics.median(naive_time), statistics.median(naive_size)
    all_times = ticks["forming"][0] + ticks["close"][0]
    all_sizes = ticks["forming"][1] + ticks["close"][1]
    print(f"   {'request':<38}{'bytes':>12}{'server ms':>12}{'size ratio':>12}{'time ratio':>12}")
    print(f"   {'full rebuild with layers (naive)':<38}{naive_b:>12,.0f}{naive_t * 1e3:>12.2f}")
    for kind, (times, sizes) in ticks.items():
        if times:
            t, b = statistics.median(times), max(sizes)
            print(
                f"   {'live tick, ' + kind + f' ({len(times)})':<38}{b:>12,}{t * 1e3:>12.2f}"
                f"{naive_b / b:>11,.0f}x{naive_t / t:>11,.1f}x"
            )
    t_all, b_max = statistics.median(all_times), max(all_sizes)
    t_close = statistics.median(ticks["close"][0]) if ticks["close"][0] else float("nan")
    return [
        ("tick <= 2 KB (largest tick)", b_max <= GOAL_TICK_BYTES, f"{b_max:,} bytes"),
        (
            "  close ticks <= 5 ms (median; with defaults each 1 s tick has a close)",
            t_close * 1e3 <= GOAL_TICK_MS,
            f"{t_close * 1e3:.2f} ms",
        ),
        (
            "tick <= 5 ms server time (median of all ticks)",
            t_all * 1e3 <= GOAL_TICK_MS,
            f"{t_all * 1e3:.2f} ms (close ticks {t_close * 1e3:.2f} ms; naive "
            f"{naive_t * 1e3:.0f} ms, {naive_t / t_all:,.0f}x)",
        ),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big", type=int, default=1_000_000)
    parser.add_argument("--bars", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=60)
    args = parser.parse_args()
    start = time.perf_counter()
    rows = tick_section(args.bars, args.rounds) + lod_section(args.big)
    print(f"\n{'goal':<52}{'verdict':<9}measured   (run {time.perf_counter() - start:.0f} s)")
    for label, ok, measured in rows:
        print(f"{label:<52}{'PASS' if ok else 'FAIL':<9}{measured}")
    return 0 if all(ok for _, ok, _ in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
