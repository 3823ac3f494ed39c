"""The Execution page (/execution): what an account's orders cost (issue 16's dashboard).

>>> register_callbacks(app, ExecutionViews(services.sessions, settings.data_dir))
>>> layout(views.accounts(), search="?account=desk&by=algo")

Every account with orders (paper accounts and imported ones): the key figures, the
distribution of arrival slippage, the implementation shortfall split as a waterfall, the
markout curve with its 95% band, fill rate, latency and cost by the chosen grouping and by
algo, venue and order type, decision quality over time, the stored cost model's predictions
against the realised cost, the n/a reasons and the trade-by-trade TCA grid; the account's
decision dataset as a Parquet download. The numbers are those of ``app.py tca --json``
(services/execution_views.py reads them through TCAService and ExecutionMLService).

layout.py     the page
tables.py     the grid's rows and columns, key figures, n/a reasons, status line, link's view
callbacks.py  the view, the download
"""

from dashboard.pages.execution.callbacks import (
    PAGE_PATH,
    VIEW_OUTPUTS,
    download,
    register_callbacks,
    view_outputs,
)
from dashboard.pages.execution.layout import layout

__all__ = ["PAGE_PATH", "VIEW_OUTPUTS", "download", "layout", "register_callbacks", "view_outputs"]
