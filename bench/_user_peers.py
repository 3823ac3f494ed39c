"""The peers' scripts bench/user_paths.py writes into its scratch directory and runs as fresh
processes: what a user of backtesting.py, vectorbt or plain pandas would write for the same job.

Each reads the bars from the CSV the way a careful pandas user does (``read_csv`` then
``to_datetime(utc=True)``: ``read_csv(parse_dates=True)`` of these tz-aware stamps is ~25x
slower and would flatter us), trades SMA(10)/SMA(30) crossover on both sides like
backtesting.py's own SmaCross example (its README and test suite), and prints one JSON line.
"""

from __future__ import annotations

READ_BARS = '''
def read_bars(path, first=None, last=None):
    """The CSV's bars, tz-naive UTC index (what backtesting.py and vectorbt expect)."""
    frame = pd.read_csv(path)
    frame.index = pd.to_datetime(frame.pop("timestamp"), utc=True).dt.tz_localize(None)
    return frame.iloc[first:last]
'''

# backtesting.py's SmaCross (backtesting.test.SMA is this rolling mean); cash 10,000, no
# commission, finalize_trades: what tests/analytics/test_compat_backtesting.py compares with
BACKTESTING_PY = (
    """
import json
import sys
import warnings

import pandas as pd
from backtesting import Backtest, Strategy
from backtesting.lib import crossover
"""
    + READ_BARS
    + """

def SMA(values, n):
    return pd.Series(values).rolling(n).mean()


class SmaCross(Strategy):
    fast = 10
    slow = 30

    def init(self):
        self.sma1 = self.I(SMA, self.data.Close, self.fast)
        self.sma2 = self.I(SMA, self.data.Close, self.slow)

    def next(self):
        if crossover(self.sma1, self.sma2):
            self.position.close()
            self.buy()
        elif crossover(self.sma2, self.sma1):
            self.position.close()
            self.sell()


warnings.simplefilter("ignore")  # its stats call a pandas API deprecated in pandas 3
mode, grid, paths = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3:]
out = {}
for path in paths:
    bars = read_bars(path).rename(columns=str.capitalize)
    bt = Backtest(bars, SmaCross, cash=10_000, finalize_trades=True)
    if mode == "run":
        stats = bt.run()
    else:  # the same grid as app.py sweep, every combination, best Sharpe Ratio
        stats = bt.optimize(**grid, maximize="Sharpe Ratio")
    strategy = stats["_strategy"]
    out[path] = {
        "trades": int(stats["# Trades"]),
        "equity_final": float(stats["Equity Final [$]"]),
        "sharpe": float(stats["Sharpe Ratio"]),
        "best": {"fast": int(strategy.fast), "slow": int(strategy.slow)},
    }
print(json.dumps(out))
"""
)

# vectorbt: the same crossover signals, entered at the next bar's open (backtesting.py's and
# our compat fill), reversing on the opposite signal, with its statistics; its Rust engine
# when installed (vectorbt-rust), else numba
VECTORBT = (
    """
import json
import sys
import warnings

import pandas as pd
import vectorbt as vbt
"""
    + READ_BARS
    + """

try:
    from vectorbt._engine import is_rust_available
    engine = "rust" if is_rust_available() else "numba"
except ImportError:
    engine = None
bars = read_bars(sys.argv[1])
close = bars["close"]
fast, slow = close.rolling(10).mean(), close.rolling(30).mean()
up = (fast.shift(1) < slow.shift(1)) & (fast > slow)
down = (slow.shift(1) < fast.shift(1)) & (slow > fast)
options = {"engine": engine} if engine else {}
pf = vbt.Portfolio.from_signals(
    close,
    entries=up.shift(1, fill_value=False),
    short_entries=down.shift(1, fill_value=False),
    price=bars["open"],
    init_cash=10_000.0,
    freq="1min",
    upon_opposite_entry="reverse",
    **options,
)
warnings.simplefilter("ignore")
stats = pf.stats()
print(json.dumps({"trades": int(stats["Total Trades"]), "equity_final": float(stats["End Value"]),
                  "engine": engine}))
"""
)

# the naive import: pandas reads the CSV and DataFrame.to_sql appends it to the same (migrated,
# empty) candles table app.py import writes; no validation, no upsert
TO_SQL = """
import sys

import pandas as pd
from sqlalchemy import create_engine

path, url, symbol = sys.argv[1:4]
frame = pd.read_csv(path)
stamps = pd.to_datetime(frame.pop("timestamp"), utc=True)
frame.insert(0, "ts", (stamps - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1))
frame.insert(0, "timeframe", "1m")
frame.insert(0, "symbol", symbol)
engine = create_engine(url)
with engine.begin() as connection:
    frame.to_sql("candles", connection, if_exists="append", index=False, chunksize=10_000)
engine.dispose()
print(len(frame))
"""

SCRIPTS = {
    "backtesting_py.py": BACKTESTING_PY,
    "vectorbt_run.py": VECTORBT,
    "to_sql.py": TO_SQL,
}
