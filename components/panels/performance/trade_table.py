"""The trade table of the performance panel (dash-ag-grid): columns, one record per trade,
the grid's theme and behaviour.

>>> trade_grid("bt-trades", theme=DARK, decimals=price_decimals(result.trades["entry_price"]))
>>> trade_table_records(result.trades)[0]["pnl"]
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd

from analytics.exports import format_duration
from components.charts.style import FONT
from components.charts.theme import DARK, ChartTheme, rgba
from market.timeframes import utc_index

TRADE_TABLE_TEXT_COLUMNS = ("side", "entry_time", "exit_time", "duration", "exit_reason")


def price_decimals(prices: pd.Series | np.ndarray) -> int:
    """Decimals to show for prices of this size: 2 for 1,245.02, 4 for 1.0834, up to 8."""
    values = np.abs(np.asarray(prices, dtype=float))
    values = values[np.isfinite(values) & (values > 0)]
    if not values.size:
        return 2
    return int(min(8, max(2, 4 - math.floor(math.log10(float(np.median(values)))))))


def _number_format(decimals: int, *, suffix: str = "", trim: bool = False) -> dict:
    """An AG Grid valueFormatter: thousands separators, fixed decimals (d3-format)."""
    spec = f",.{decimals}{'~' if trim else ''}f"
    return {
        "function": f"params.value == null ? '' : d3.format('{spec}')(params.value) + '{suffix}'"
    }


def trade_table_columns(
    decimals: int = 2, theme: ChartTheme = DARK, *, labels: bool = False
) -> list[dict]:
    """``columnDefs`` of the trade grid (dash-ag-grid); ``decimals`` of the prices (see
    :func:`price_decimals`). Fields are keys of :func:`trade_table_records`; PnL and return
    are coloured profit/loss by sign. ``labels``: a Labels column (rows made with labels)."""
    signed = {
        "function": f"params.value > 0 ? {{color: '{theme.profit}'}} : "
        f"params.value < 0 ? {{color: '{theme.loss}'}} : null"
    }
    price = _number_format(decimals)
    percent = _number_format(2, suffix="%")
    numeric = {"type": "rightAligned", "filter": "agNumberColumnFilter"}
    columns = [
        {"field": "id", "headerName": "#", "width": 70, **numeric},
        {"field": "side", "headerName": "Side", "width": 90},
        {"field": "entry_time", "headerName": "Entry (UTC)", "minWidth": 150},
        {"field": "exit_time", "headerName": "Exit (UTC)", "minWidth": 150},
        {"field": "entry_price", "headerName": "Entry price", "valueFormatter": price, **numeric},
        {"field": "exit_price", "headerName": "Exit price", "valueFormatter": price, **numeric},
        {
            "field": "size",
            "headerName": "Size",
            "valueFormatter": _number_format(6, trim=True),
            **numeric,
        },
        {
            "field": "pnl",
            "headerName": "PnL",
            "valueFormatter": _number_format(2),
            "cellStyle": signed,
            **numeric,
        },
        {
            "field": "return_pct",
            "headerName": "Return",
            "valueFormatter": percent,
            "cellStyle": signed,
            **numeric,
        },
        {"field": "duration", "headerName": "Duration", "width": 110},
        {"field": "exit_reason", "headerName": "Exit reason", "width": 130},
        {"field": "mae_pct", "headerName": "MAE", "valueFormatter": percent, **numeric},
        {"field": "mfe_pct", "headerName": "MFE", "valueFormatter": percent, **numeric},
    ]
    if labels:  # beside the trade's result, in view on a 1280-wide screen
        at = next(k for k, c in enumerate(columns) if c["field"] == "return_pct") + 1
        columns.insert(at, {"field": "labels", "headerName": "Labels", "minWidth": 220, "flex": 2,
                             "tooltipField": "labels"})  # fmt: skip
    return columns


def _floats(values: pd.Series | np.ndarray, scale: float = 1.0) -> list[float | None]:
    array = np.asarray(values, dtype=float) * scale
    return [None if math.isnan(v) else v for v in array.tolist()]


def trade_table_records(
    trades: pd.DataFrame, first_id: int = 1, labels: list[tuple[str, ...]] | None = None
) -> list[dict]:
    """One dict per trade for the DataTable's ``data``.

    ``id`` is the trade number (``first_id`` for the first row, 1 unless ``trades`` are the
    tail of a run's; the DataTable's row id); times are "YYYY-MM-DD HH:MM"
    UTC; ``size`` is absolute (the side says the direction); ``return_pct``, ``mae_pct`` and
    ``mfe_pct`` are percent; ``duration`` is text ("42d 4h"). Not shown as columns:
    ``entry_ms``/``exit_ms`` (epoch ms, to zoom the chart on a click) and ``duration_s``.
    NaN is None. ``labels``: each trade's labels (analytics.trade_labels), as the ``labels``
    text ("a, b") and the ``label_set`` list the label filter reads.
    """
    if not len(trades):
        return []
    entry, exit_ = utc_index(trades["entry_time"]), utc_index(trades["exit_time"])
    durations = pd.to_timedelta(trades["duration"]) if "duration" in trades else exit_ - entry
    columns = {
        "id": list(range(first_id, first_id + len(trades))),
        "side": trades["side"].astype(str).tolist(),
        "entry_time": entry.strftime("%Y-%m-%d %H:%M").tolist(),
        "exit_time": exit_.strftime("%Y-%m-%d %H:%M").tolist(),
        "entry_price": _floats(trades["entry_price"]),
        "exit_price": _floats(trades["exit_price"]),
        "size": _floats(np.abs(trades["size"].to_numpy(dtype=float))),
        "pnl": _floats(trades["pnl"]),
        "return_pct": _floats(trades["return_pct"], 100),
        "duration": [format_duration(d) for d in durations],
        "exit_reason": trades["exit_reason"].astype(str).tolist(),
        "mae_pct": _floats(trades["mae"], 100),
        "mfe_pct": _floats(trades["mfe"], 100),
        "entry_ms": entry.as_unit("ms").asi8.tolist(),
        "exit_ms": exit_.as_unit("ms").asi8.tolist(),
        "duration_s": _floats(pd.Series(durations).dt.total_seconds()),
    }
    if labels is not None:
        columns["labels"] = [", ".join(names) for names in labels]
        columns["label_set"] = [list(names) for names in labels]
    names = list(columns)
    return [dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)]


def trade_table_style(theme: ChartTheme = DARK) -> dict[str, Any]:
    """The trade grid's theme and behaviour (dash-ag-grid keyword arguments):
    ``AgGrid(**trade_table_style(theme), ...)``. AG Grid's Quartz theme with the chart
    theme's colours; sort, filter, 10 rows a page."""
    params = {
        "backgroundColor": theme.background,
        "foregroundColor": theme.text,
        "headerBackgroundColor": theme.grid,
        "borderColor": theme.grid,
        "rowHoverColor": rgba(theme.line_palette[0], 0.12),
        "accentColor": theme.line_palette[0],
        "fontFamily": FONT,
        "fontSize": 12,
        "headerFontSize": 12,
        "spacing": 5,
        "wrapperBorderRadius": 4,
    }
    return {
        "dashGridOptions": {
            "theme": {"function": f"themeQuartz.withParams({json.dumps(params)})"},
            "pagination": True,
            "paginationPageSize": 10,
            "paginationPageSizeSelector": [10, 25, 50, 100],
            "animateRows": False,
            "domLayout": "autoHeight",
        },
        "defaultColDef": {
            "sortable": True,
            "filter": True,
            "floatingFilter": True,
            "resizable": True,
            "minWidth": 80,
            "flex": 1,
        },
        "getRowId": "'' + params.data.id",  # a string, as AG Grid wants
    }


def trade_grid(grid_id: str, theme: ChartTheme = DARK, decimals: int = 2) -> Any:
    """The sortable, filterable, paginated trade table (dash-ag-grid); rows from
    :func:`trade_table_records`, a click on a row gives ``cellClicked`` with its ``rowId``."""
    import dash_ag_grid as dag

    return dag.AgGrid(
        id=grid_id,
        columnDefs=trade_table_columns(decimals, theme),
        rowData=[],
        className="sl-grid",
        **trade_table_style(theme),
    )
