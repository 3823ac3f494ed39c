"""Live tick against full-figure rebuild, for a chart holding 10,000 candles, in one run.

    python bench/live_tick.py [--bars 10000] [--rounds 60]

Both requests go through the real Dash app (Flask test client -> /_dash-update-component ->
callback -> JSON), on a SQLite database in a temporary folder. "Full rebuild" is what a
dashboard that redraws on every refresh does: the build callback with the window cache
cleared. "Live tick" is the interval callback after one feed event (a forming update or a
close) or after five (what the default settings bring per refresh: a close and the next
bar's forming updates); the status line is rendered in the browser from the chart state.
Goals (issue 2): tick response <= 1 KB and >= 1,000x smaller than the full figure; server
time >= 20x less.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._dash_client import app_over, build_payload, live_tick, post
from dashboard.pages.live.view_state import ViewState

SYMBOL = "BENCH"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=100)
    args = parser.parse_args()
    app, client = app_over(
        SYMBOL,
        args.bars + args.rounds * 5,
        replay=args.rounds * 5,
        chart_bars=args.bars,
        start="2024-01-01",
    )
    services = app.server.extensions["stratlens"]

    view = ViewState(symbol=SYMBOL, timeframe="1m")  # candles only, as in issue 2
    build = build_payload(app, view)

    full_time, full_size = [], []
    for _ in range(max(5, args.rounds // 4)):
        services.cache.clear()  # the naive dashboard recomputes everything on each refresh
        elapsed, size, body = post(client, build)
        full_time.append(elapsed)
        full_size.append(size)
    chart_state = body["response"]["chart-state"]["data"]
    held = len(services.market_data.window(SYMBOL, "1m", args.bars).closed)

    ticks = {"forming": ([], []), "close": ([], [])}
    for round_ in range(args.rounds):
        # one feed event, or five: the defaults' events per 1 s refresh (1 close + 4 forming)
        for _ in range(1 if round_ % 2 else 5):
            services.runner.step()
        chart_state = live_tick(client, app, view, chart_state, ticks)
    services.close()

    full_t, full_b = statistics.median(full_time), statistics.median(full_size)
    print(f"chart holding {held:,} candles (1m), {args.rounds} ticks, median of each")
    print("bytes: largest response of each kind; server ms: median")
    print(f"{'request':<34}{'bytes':>12}{'server ms':>12}{'size ratio':>13}{'time ratio':>13}")
    print(f"{'full figure rebuild (naive)':<34}{full_b:>12,.0f}{full_t * 1e3:>12.2f}")
    worst_size, worst_time = 0.0, 0.0
    for kind, (times, sizes) in ticks.items():
        if not times:
            continue
        t, b = statistics.median(times), max(sizes)
        worst_size, worst_time = max(worst_size, b), max(worst_time, t)
        label = {"forming": "live tick, forming only", "close": "live tick, close (+forming)"}[kind]
        print(f"{label:<34}{b:>12,.0f}{t * 1e3:>12.2f}{full_b / b:>12,.0f}x{full_t / t:>12,.1f}x")
    goals = [
        ("tick response <= 1 KB", worst_size <= 1024),
        ("tick response >= 1,000x smaller", full_b / worst_size >= 1000),
        ("tick server time >= 20x less", full_t / worst_time >= 20),
    ]
    for name, ok in goals:
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    return 0 if all(ok for _, ok in goals) else 1


if __name__ == "__main__":
    sys.exit(main())
