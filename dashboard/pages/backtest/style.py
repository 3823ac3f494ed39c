"""The backtest page's look: shown/hidden styles, the chart theme by name, the grids' props,
the blank figure of an empty graph, and the tidying every result figure gets."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from components.charts.theme import THEMES, ChartTheme
from components.panels.performance import trade_table_style
from dashboard.shell import GRAPH_CONFIG

SMALL_GRAPH = {**GRAPH_CONFIG, "displayModeBar": False}
SHOW: dict[str, str] = {"display": "block"}
HIDE: dict[str, str] = {"display": "none"}
TRADE_PAGE_ROWS = 15


def resolve_theme(theme: str) -> ChartTheme:
    """``THEMES[theme]``; an unknown name raises ValueError listing the known ones."""
    try:
        return THEMES[theme]
    except KeyError:
        raise ValueError(
            f"theme={theme!r} is invalid: expected one of {', '.join(THEMES)}"
        ) from None


def trades_grid_style(look: ChartTheme) -> dict[str, Any]:
    """The trade grid's props (components.panels.performance.trade_table_style: sortable,
    filterable, paginated) with :data:`TRADE_PAGE_ROWS` trades a page."""
    style = trade_table_style(look)
    style["dashGridOptions"] = {
        **style["dashGridOptions"],
        "paginationPageSize": TRADE_PAGE_ROWS,
        "paginationPageSizeSelector": [TRADE_PAGE_ROWS, 50, 100],
    }
    return style


def runs_grid_style(look: ChartTheme) -> dict[str, Any]:
    """The saved-runs grid's props: the trade grid's look, several rows selectable by their
    checkboxes (``selectedRows``: the selected rows' dicts), 10 runs a page."""
    style = trade_table_style(look)
    style["getRowId"] = "params.data.row_id"  # a string: AG Grid warns about a number id
    style["dashGridOptions"] = {
        **style["dashGridOptions"],
        "rowSelection": {
            "mode": "multiRow",
            "checkboxes": True,
            "headerCheckbox": False,
            "enableClickSelection": False,
        },
        "paginationPageSize": 10,
        "paginationPageSizeSelector": [10, 25, 50],
    }
    return style


def blank_figure(look: ChartTheme) -> go.Figure:
    """An empty graph in the theme's background, no axes: until a result is drawn."""
    figure = go.Figure()
    figure.update_layout(
        template="none",
        paper_bgcolor=look.background,
        plot_bgcolor=look.background,
        xaxis={"visible": False},
        yaxis={"visible": False},
        margin={"l": 0, "r": 0, "t": 0, "b": 0},
    )
    return figure


def tidy(figure: go.Figure) -> go.Figure:
    """Axis labels never cut (automargin on every axis) and text never clipped at the plot
    edge: the panels' compact margins leave no room for long category labels."""
    figure.update_xaxes(automargin=True)
    figure.update_yaxes(automargin=True)
    figure.update_traces(cliponaxis=False, selector={"type": "scatter", "mode": "markers+text"})
    return figure
