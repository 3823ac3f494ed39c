"""The Trading page (/trading): paper accounts and their deployments, live.

>>> register_callbacks(app, PaperTrading(services.sessions, runner=services.trading),
...                    TradingViews(services.sessions), services.market_data)
>>> layout(accounts, symbols, timeframes, refresh_ms)

At the top the account (choose, or create one with its cash and drawdown limit), its KPI
cards (equity marked at the positions' last prices, cash, realised and unrealised PnL, fees,
exposure, drawdown now against the limit that halts it) and a status line; then the
deployments (start, stop; the runner, services/trading_runner.py, trades the running ones
on every closed candle of the feeds), the open orders (select one: cancel it, or change its
quantity, limit or stop price), the positions and the newest fills; beside them the alerts
(the account's halt, the deployments' errors; region "trading-alerts") and the form of a new
deployment (strategy and its parameters as the backtest form builds and checks them, symbol,
timeframe and the deployment settings of trading/config.py).

layout.py     the page
form.py       the account and deployment forms, their values read into PaperTrading's args
tables.py     KPI cards, grid columns and rows, alerts, from a TradingSnapshot
callbacks.py  the callbacks (refresh while shown, create, deploy, start/stop, cancel/modify)
"""

from dashboard.pages.trading.callbacks import (
    PAGE_PATH,
    WRITE_OUTPUTS,
    order_action,
    refresh,
    register_callbacks,
)
from dashboard.pages.trading.form import (
    DeployFormError,
    account_request,
    deploy_request,
)
from dashboard.pages.trading.layout import layout

__all__ = [
    "PAGE_PATH",
    "WRITE_OUTPUTS",
    "DeployFormError",
    "account_request",
    "deploy_request",
    "layout",
    "order_action",
    "refresh",
    "register_callbacks",
]
