"""The names StratLens accepts for timeframes and metric presets, importable without pandas.

The command line offers them as choices before it imports anything heavy (``app.py --help``
stays fast); market.timeframes parses timeframes against SUPPORTED_TIMEFRAMES and
analytics.metrics.PRESETS holds one convention per name of METRIC_PRESETS.
"""

SUPPORTED_TIMEFRAMES = ("1m", "5m", "15m", "30m", "1h", "4h", "1d", "1w")
METRIC_PRESETS = ("backtesting.py", "quantstats", "trade")
# ccxt's exchange ids (binance, coinbase, kraken): FEEDS=SYMBOL:ccxt:EXCHANGE:TIMEFRAME
EXCHANGE_ID_PATTERN = r"^[a-z][a-z0-9_]*$"
