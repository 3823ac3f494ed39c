"""The Attribution page (/attribution): where an account's PnL and its risk come from.

>>> register_callbacks(app, AttributionViews(TrackingService(services.sessions), services.sessions))
>>> layout(views.accounts(), services.market_data.symbols(), search="?account=p1")

Every account with trades (paper accounts and imported bot databases side by side, each with
its source), filtered by strategy and label: net PnL and win rate by label, net PnL by entry
weekday and hour (UTC), by volatility regime and size bucket, each group's share of the
variance of daily PnL, alpha and beta against a stored benchmark under empyrical's convention
with the factor regression, the label patterns (noise flagged), the round trips in a grid and
a clicked trip's fills, market context, labels and bars. The numbers are those of
``app.py attribution --json`` (services/tracking_views.py computes them as the service does).

layout.py     the page
tables.py     grid rows and columns, the trade detail's tables, the status line, the link's view
callbacks.py  the account's filters reset, the view, a trade's detail
"""

from dashboard.pages.attribution.callbacks import (
    PAGE_PATH,
    VIEW_OUTPUTS,
    account_choice,
    detail_outputs,
    register_callbacks,
    view_outputs,
)
from dashboard.pages.attribution.layout import layout

__all__ = [
    "PAGE_PATH",
    "VIEW_OUTPUTS",
    "account_choice",
    "detail_outputs",
    "layout",
    "register_callbacks",
    "view_outputs",
]
