"""KPI cards of the performance panel: metric values formatted (``format_metric``), toned
(profit, loss, neutral) and laid out as cards with their formula one click away.

>>> kpi_cards(kpi_values(stats, result.settings.cash), id_prefix="perf", theme=DARK)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import dash_bootstrap_components as dbc
import pandas as pd
from dash import html

from analytics.exports import format_duration
from analytics.metrics.notes import notes
from components.charts.theme import DARK, ChartTheme
from components.panels.performance.formulas import FORMULAS, METRICS_DOC, NET_PNL, metric_slug

NAN = float("nan")
MISSING = "—"  # what a NaN metric shows
SHORT_SPAN = "n/a <1y"  # an annualised figure of a series under a year (analytics.metrics.notes)
KPI_KEYS: tuple[str, ...] = (
    NET_PNL,
    "Return [%]",
    "Sharpe Ratio",
    "Sortino Ratio",
    "Calmar Ratio",
    "Max. Drawdown [%]",
    "Win Rate [%]",
    "Profit Factor",
    "# Trades",
)
KPI_LABELS: dict[str, str] = {
    NET_PNL: "Net PnL",
    "Return [%]": "Return",
    "Sharpe Ratio": "Sharpe",
    "Sortino Ratio": "Sortino",
    "Calmar Ratio": "Calmar",
    "Max. Drawdown [%]": "Max drawdown",
    "Win Rate [%]": "Win rate",
    "Profit Factor": "Profit factor",
    "# Trades": "Trades",
}
# a KPI is "pos" above its pivot and "neg" below; keys without a pivot stay "neutral"
_TONE_PIVOT: dict[str, float] = {
    NET_PNL: 0.0,
    "Return [%]": 0.0,
    "Sharpe Ratio": 0.0,
    "Sortino Ratio": 0.0,
    "Calmar Ratio": 0.0,
    "Max. Drawdown [%]": 0.0,
    "Profit Factor": 1.0,
}

Tone = Literal["pos", "neg", "neutral"]


def _number(value: Any) -> float:
    """A metric value as a float; None, NaT and non-numbers are NaN."""
    if value is None or isinstance(value, str | pd.Timestamp | pd.Timedelta):
        return NAN
    try:
        return NAN if pd.isna(value) else float(value)
    except (TypeError, ValueError):
        return NAN


def _is_count(key: str) -> bool:
    return key.startswith(("# ", "Max. Consecutive"))


def format_metric(key: str, value: Any) -> str:
    """Display text of one metric: ``"-$1,234.50"``, ``"12.34%"``, ``"1.07"``, ``"176"``,
    ``"42d"``; NaN, NaT and None show ``"—"``."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return MISSING
    if isinstance(value, str):
        return value
    if isinstance(value, pd.Timedelta):
        return format_duration(value)
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d %H:%M")
    number = float(value)
    if math.isinf(number):
        return "∞" if number > 0 else "-∞"
    if round(number, 2) == 0:  # no "-0.00" for -0.0 or -0.001
        number = 0.0
    if key.endswith("[$]"):
        return f"-${-number:,.2f}" if number < 0 else f"${number:,.2f}"
    if key.endswith("[%]"):
        return f"{number:,.2f}%"
    if _is_count(key):
        return f"{round(number):,}"
    if key.endswith("Duration"):  # in bars when the equity has no DatetimeIndex
        return f"{number:,.0f} bars"
    return f"{number:,.2f}"


# --- KPI cards -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kpi:
    """One KPI: ``value`` (NaN when undefined), ``text`` to show, ``tone`` for its colour."""

    key: str
    label: str
    value: float | int
    text: str
    tone: Tone

    @property
    def slug(self) -> str:
        return metric_slug(self.key)


def _tone(key: str, value: float) -> Tone:
    pivot = _TONE_PIVOT.get(key)
    if pivot is None or math.isnan(value) or value == pivot:
        return "neutral"
    return "pos" if value > pivot else "neg"


def kpi_values(metrics: pd.Series, initial_cash: float) -> list[Kpi]:
    """The :data:`KPI_KEYS` of a compute_metrics Series, formatted and toned.

    >>> [k.text for k in kpi_values(stats, 10_000)][:2]
    ['$17.60', '0.18%']

    Net PnL = Equity Final [$] - ``initial_cash``. A missing key is NaN ("—").
    """
    out = []
    hidden = notes(metrics)
    for key in KPI_KEYS:
        if key in hidden:  # e.g. Calmar of a series under a year: not annualised (GIPS)
            out.append(Kpi(key, KPI_LABELS[key], NAN, SHORT_SPAN, "neutral"))
            continue
        if key == NET_PNL:
            value: float | int = _number(metrics.get("Equity Final [$]")) - float(initial_cash)
        else:
            value = _number(metrics.get(key))
        if _is_count(key) and not math.isnan(value):
            value = round(value)
        out.append(Kpi(key, KPI_LABELS[key], value, format_metric(key, value), _tone(key, value)))
    return out


def kpi_style(kpi: Kpi, theme: ChartTheme = DARK) -> dict[str, str]:
    """The value's inline style: profit, loss or text colour by tone."""
    color = {"pos": theme.profit, "neg": theme.loss}.get(kpi.tone, theme.text)
    return {"color": color, "fontSize": "1.15rem", "fontWeight": "600", "whiteSpace": "nowrap"}


def kpi_cards(
    kpis: list[Kpi],
    *,
    id_prefix: str,
    theme: ChartTheme = DARK,
    docs_url: str = METRICS_DOC,
) -> dbc.Row:
    """A row of small cards, one per KPI.

    Each value is an ``html.Div`` with id ``f"{id_prefix}-{kpi.slug}"`` (a callback updates its
    ``children`` with ``kpi.text`` and its ``style`` with :func:`kpi_style`). A label with a
    formula has a "?" (id ``...-help``): hovering shows the formula and the preset note, clicking
    opens ``docs_url#anchor``.
    """
    cols = []
    for kpi in kpis:
        value_id = f"{id_prefix}-{kpi.slug}"
        label: list[Any] = [html.Span(kpi.label, className="sl-kpi-label")]
        extra: list[Any] = []
        formula = FORMULAS.get(kpi.key)
        if formula is not None:
            help_id = f"{value_id}-help"
            label.append(
                html.A(
                    "?",
                    id=help_id,
                    href=formula.href(docs_url),
                    target="_blank",
                    rel="noopener",
                    className="sl-kpi-help ms-1",
                    style={"color": theme.level, "textDecoration": "none", "cursor": "help"},
                )
            )
            extra.append(
                dbc.Tooltip(
                    [
                        html.Div(formula.text, style={"fontFamily": "monospace"}),
                        html.Div(formula.note, className="small mt-1"),
                    ],
                    target=help_id,
                    placement="bottom",
                )
            )
        body = dbc.CardBody(
            [
                html.Div(label, className="small", style={"color": theme.text, "opacity": 0.8}),
                html.Div(
                    kpi.text,
                    id=value_id,
                    className=f"sl-kpi-value sl-kpi-{kpi.tone}",
                    style=kpi_style(kpi, theme),
                ),
                *extra,
            ],
            className="px-2 py-1",
        )
        card = dbc.Card(
            body,
            className="sl-kpi h-100",
            style={"backgroundColor": theme.background, "borderColor": theme.grid},
        )
        cols.append(dbc.Col(card, xs=6, md=4, xl=True))
    return dbc.Row(cols, className="g-2 sl-kpis", id=f"{id_prefix}-kpis")
