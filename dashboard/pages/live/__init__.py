"""The live page (/): the layered chart of one symbol, patched in place on each tick, its
controls kept in the URL, and the performance and comparison panels below.

layout.py        what the page shows (toolbar, sidebar of layers, chart, panels)
controls.py      the controls' choices, the view they make, the URL kept in step with them
view_state.py    the view as a URL query (bookmarkable, shareable)
chart.py         the whole figure, the level-of-detail view, the tick's delta
panels.py        the performance and comparison panels: layout and the functions filling them
callbacks.py     the page's callbacks (thin), panels_callbacks.py the panels'

>>> app.layout = layout(services.market_data, refresh_ms=1000)
>>> register_callbacks(app, LiveContext(services.market_data, services.tracks, bars=500))
"""

from dashboard.pages.live.callbacks import register_callbacks
from dashboard.pages.live.chart import LiveContext
from dashboard.pages.live.layout import default_view, layout

__all__ = ["LiveContext", "default_view", "layout", "register_callbacks"]
