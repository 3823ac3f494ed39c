"""What the Trading page shows of a :class:`~services.trading_views.TradingSnapshot`: the KPI
cards (the performance panel's look), the grids' columns and rows, the alerts list.

Plain functions of plain values (no callback, no database): tests call them directly.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any

import dash_bootstrap_components as dbc
from dash import html

from components.charts.theme import ChartTheme
from components.panels.performance import trade_table_style
from components.panels.performance.kpis import Kpi, kpi_cards
from services.trading_views import AccountSummary, TradingSnapshot

KPI_PREFIX = "tr-kpi"


def _money(value: float) -> str:
    # + 0.0: a cash of -0.0001 shows 0.00, not -0.00
    return "—" if math.isnan(value) else f"{round(value, 2) + 0.0:,.2f}"


def _pct(value: float) -> str:
    return "—" if math.isnan(value) else f"{value * 100:.2f}%"


def _tone(value: float) -> str:
    if math.isnan(value) or value == 0:
        return "neutral"
    return "pos" if value > 0 else "neg"


_NO_ACCOUNT = AccountSummary(
    name="", status="", halt_reason=None, starting_cash=1.0, cash=0.0, equity=0.0,
    realised_pnl=0.0, unrealised_pnl=0.0, fees=0.0, exposure=0.0, exposure_pct=0.0,
    peak_equity=0.0, drawdown_pct=0.0, max_drawdown_pct=None,
)  # fmt: skip


def account_kpis(a: AccountSummary) -> list[Kpi]:
    """Equity, cash, realised and unrealised PnL, fees, exposure, drawdown (now / limit)."""
    limit = "no limit" if a.max_drawdown_pct is None else _pct(a.max_drawdown_pct)
    near = a.max_drawdown_pct is not None and a.drawdown_pct >= 0.8 * a.max_drawdown_pct
    return [
        Kpi("equity", "Equity", a.equity, _money(a.equity), _tone(a.return_pct)),
        Kpi("cash", "Cash", a.cash, _money(a.cash), "neutral"),
        Kpi("realised", "Realised PnL", a.realised_pnl, _money(a.realised_pnl),
            _tone(a.realised_pnl)),
        Kpi("unrealised", "Unrealised PnL", a.unrealised_pnl, _money(a.unrealised_pnl),
            _tone(a.unrealised_pnl)),
        Kpi("fees", "Fees", a.fees, _money(a.fees), "neutral"),
        Kpi("exposure", "Exposure", a.exposure,
            f"{_money(a.exposure)} · {_pct(a.exposure_pct)}", "neutral"),
        Kpi("drawdown", "Drawdown / limit", a.drawdown_pct,
            f"{_pct(a.drawdown_pct)} / {limit}", "neg" if near else "neutral"),
    ]  # fmt: skip


def no_account_kpis() -> list[Kpi]:
    """The cards' values without an account: a dash each."""
    nan = float("nan")
    return [Kpi(k.slug, k.label, nan, "—", "neutral") for k in account_kpis(_NO_ACCOUNT)]


def snapshot_kpis(snapshot: TradingSnapshot | None) -> list[Kpi]:
    return no_account_kpis() if snapshot is None else account_kpis(snapshot.account)


def kpi_row(kpis: list[Kpi], theme: ChartTheme) -> Any:
    """The KPI cards (ids ``tr-kpi-<slug>``): built with the layout and again only when the
    theme changes; a refresh sets the values' text and style (leaf properties, no new
    components: a new component costs the browser a store update per component)."""
    return kpi_cards(kpis, id_prefix=KPI_PREFIX, theme=theme)


def status_line(snapshot: TradingSnapshot | None) -> str:
    if snapshot is None:
        return "no account: create one under Accounts"
    a = snapshot.account
    state = a.status if a.halt_reason is None else f"{a.status}: {a.halt_reason}"
    return (
        f"account {a.name} ({state}) · {len(snapshot.deployments)} deployments · "
        f"{len(snapshot.open_orders)} open orders · {len(snapshot.fills)} recent fills"
    )


def alerts_list(snapshot: TradingSnapshot | None) -> Any:
    """The account's halt and its deployments' errors (the alerts page lists every alert)."""
    notes = () if snapshot is None else snapshot.alerts
    if not notes:
        return html.Div("no alerts", className="sl-status small")
    return [
        dbc.Alert(note, color="danger", className="py-1 px-2 mb-1 small", id=f"tr-alert-{i}")
        for i, note in enumerate(notes)
    ]


def _time(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else ""


def deployment_rows(snapshot: TradingSnapshot | None) -> list[dict[str, Any]]:
    return [] if snapshot is None else [asdict(d) for d in snapshot.deployments]


def position_rows(snapshot: TradingSnapshot | None) -> list[dict[str, Any]]:
    return [] if snapshot is None else [asdict(p) for p in snapshot.positions]


def order_rows(snapshot: TradingSnapshot | None) -> list[dict[str, Any]]:
    if snapshot is None:
        return []
    return [
        {**asdict(o), "arrival_time": _time(o.arrival_time), "price": o.limit_price or o.stop_price}
        for o in snapshot.open_orders
    ]


def fill_rows(snapshot: TradingSnapshot | None) -> list[dict[str, Any]]:
    if snapshot is None:
        return []
    return [{**asdict(f), "time": _time(f.time)} for f in snapshot.fills]


def _number(field: str, header: str, decimals: int = 2, width: int = 95) -> dict[str, Any]:
    return {
        "field": field,
        "headerName": header,
        "type": "rightAligned",
        "minWidth": width,
        "valueFormatter": {
            "function": f"params.value == null ? '' : d3.format(',.{decimals}f')(params.value)"
        },
    }


def _text(field: str, header: str, width: int = 90, **extra: Any) -> dict[str, Any]:
    """A text column at least ``width`` px wide (its values and header unclipped: the grid
    scrolls sideways when narrower than its columns), the whole value on hover."""
    return {"field": field, "headerName": header, "minWidth": width, "tooltipField": field,
            **extra}  # fmt: skip


# widths: an order id "d1-1530748800000-entry", a time "2018-07-05 00:00", a deployment name
DEPLOYMENT_COLUMNS = [
    _text("name", "Deployment", 130), _text("strategy", "Strategy", 140),
    _text("params", "Params", 170, flex=2), _text("symbol", "Symbol"), _text("timeframe", "TF", 70),
    _text("status", "Status"), _text("error", "Error", 140, flex=2),
]  # fmt: skip
POSITION_COLUMNS = [
    _text("symbol", "Symbol"), _number("quantity", "Qty", 4), _number("average_price", "Avg"),
    _number("last_price", "Last"), _number("market_value", "Value"),
    _number("unrealised_pnl", "Unrealised", width=115), _number("realised_pnl", "Realised"),
]  # fmt: skip
ORDER_COLUMNS = [
    _text("client_order_id", "Order", 200, flex=2), _text("deployment", "Deployment", 130),
    _text("side", "Side", 75), _text("order_type", "Type", 80), _text("purpose", "Purpose", 105),
    _number("quantity", "Qty", 4), _number("filled_quantity", "Filled", 4),
    _number("price", "Price"), _text("status", "Status"), _text("arrival_time", "Placed", 150),
]  # fmt: skip
FILL_COLUMNS = [
    _text("time", "Time", 150), _text("client_order_id", "Order", 200, flex=2),
    _text("deployment", "Deployment", 130), _text("side", "Side", 75), _number("price", "Price"),
    _number("quantity", "Qty", 4), _number("fee", "Fee", width=85),
    _number("realised_pnl", "Realised"),
]  # fmt: skip


def grid_style(theme: ChartTheme, row_id: str, rows: int = 8, select: bool = False) -> dict:
    """The performance panel's grid look; rows known by ``row_id`` (kept across refreshes),
    ``rows`` a page; ``select``: a click selects one row (the open orders)."""
    style = trade_table_style(theme)
    style["getRowId"] = f"params.data.{row_id}"
    options = {**style["dashGridOptions"], "paginationPageSize": rows,
               "paginationPageSizeSelector": [rows, 25, 50], "tooltipShowDelay": 400}  # fmt: skip
    if select:
        options["rowSelection"] = {
            "mode": "singleRow", "checkboxes": False, "enableClickSelection": True,
        }  # fmt: skip
    style["dashGridOptions"] = options
    style["defaultColDef"] = {**style["defaultColDef"], "floatingFilter": False}
    return style
