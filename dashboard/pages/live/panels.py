"""Below the live chart: the performance panel of one strategy and the side-by-side comparison
of every strategy switched on, on the chart's data, refreshed when a candle closes; their
layout and the plain functions that fill them (wired in
:mod:`~dashboard.pages.live.panels_callbacks`).

Each strategy is traded over the chart's whole history (``SeriesTrack.backtest``, cached per
history length: computed once per closed candle for every tab); open positions stay open
(only closed trades count; the equity curve marks them to market). Metrics follow the chosen
convention preset (analytics.metrics.PRESETS), each formula one click away (/docs/metrics).
"""

from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
import pandas as pd
from dash import dcc, html

from analytics.exports import EXPORT_FORMATS, export_bytes, export_filename
from analytics.label_config import LABELS
from analytics.metrics import PRESETS, compute_metrics, period_returns
from analytics.trade_labels import trip_labels
from components.charts.candles import chart_key
from components.charts.theme import THEMES, ChartTheme
from components.panels.comparison import (
    RunSummary,
    best_per_row,
    comparison_table,
    comparison_table_component,
    correlation_heatmap_figure,
    drawdown_overlay_figure,
    equity_overlay_figure,
    risk_return_scatter_figure,
)
from components.panels.performance import (
    kpi_cards,
    kpi_values,
    monthly_heatmap_figure,
    monthly_returns_table,
    performance_figure,
    price_decimals,
    returns_distribution_figure,
    trade_grid,
    trade_table_records,
)
from dashboard.pages.formulas import FORMULAS_URL
from dashboard.pages.live.view_state import build_strategy
from market.timeframes import Timeframe
from services.chart_layers import ChartTracks, strategy_key

FIG = {"displaylogo": False, "displayModeBar": False}
EXPORT_KINDS = ("trades", "signals", "metrics", "equity")


# while a panel recomputes, its figure stays as it was (dcc.Loading hides its children by
# default): the spinner is drawn over the old figure, only when the wait is noticeable
KEEP_VISIBLE = {"visibility": "visible"}


def _graph(id_: str, height: int | None) -> dcc.Loading:
    """A panel figure ``height`` px tall; None: as tall as its figure's layout says (the
    monthly heatmap grows a row per year: a fixed box would let the next element cover it)."""
    style = {"height": f"{height}px"} if height else {"minHeight": "200px"}
    return dcc.Loading(
        dcc.Graph(id=id_, config=FIG, style=style),
        type="dot",
        color="#f0b90b",
        delay_show=500,
        overlay_style=KEEP_VISIBLE,
        parent_className="sl-panel-graph",
    )


def hint(text: str) -> html.Div:
    return html.Div(text, className="sl-hint")


def layout() -> dbc.Card:
    exports = dbc.DropdownMenu(
        [
            dbc.DropdownMenuItem(
                f"{kind.capitalize()} · {fmt.upper()}",
                id={"type": "export", "kind": kind, "fmt": fmt},
            )
            for kind in EXPORT_KINDS
            for fmt in EXPORT_FORMATS
        ],
        label="Export",
        size="sm",
        color="secondary",
        id="export-menu",
        className="sl-export",
    )
    performance = html.Div(
        [
            dbc.Row(
                [
                    dbc.Col(
                        dbc.Select(id="perf-strategy", size="sm", placeholder="strategy"), md=5
                    ),
                    dbc.Col(
                        dbc.Select(
                            id="perf-preset",
                            options=[{"label": f"{p} convention", "value": p} for p in PRESETS],
                            value="backtesting.py",
                            size="sm",
                        ),
                        md=3,
                    ),
                    dbc.Col(
                        html.A(
                            "formulas", href=FORMULAS_URL, target="_blank", className="sl-small"
                        ),
                        width="auto",
                    ),
                    dbc.Col(exports, width="auto", className="ms-auto"),
                ],
                className="g-2 align-items-center mb-2",
            ),
            html.Div(hint("Switch a strategy on above to see its performance."), id="perf-kpis"),
            html.Div(  # watched by assets/chart_view.js: refreshed while in view
                [
                    dbc.Row(
                        [
                            dbc.Col(_graph("perf-figure", 400), xl=8),
                            dbc.Col(_graph("perf-distribution", 400), xl=4),
                            dbc.Col(_graph("perf-monthly", None), xl=12),
                        ],
                        className="g-2 mt-1",
                    ),
                    dbc.Row(
                        [
                            dbc.Col(
                                dcc.Dropdown(
                                    id="perf-labels",
                                    multi=True,
                                    placeholder="Filter trades by label (every one chosen)",
                                    className="sl-label-filter",
                                ),
                                md=6,
                            ),
                            dbc.Col(html.Div(id="perf-label-summary", className="sl-small")),
                        ],
                        className="g-2 align-items-center mt-2 mb-1",
                    ),
                    trade_grid("perf-trades", THEMES["dark"]),
                    html.Div("Click a trade to zoom the chart to it.", className="sl-hint mt-1"),
                ],
                className="sl-perf-figures",
            ),
            dcc.Download(id="download"),
        ]
    )
    comparison = html.Div(
        [
            html.Div(hint("Switch two or more strategies on to compare them."), id="cmp-table"),
            dbc.Row(
                [
                    dbc.Col(_graph("cmp-equity", 300), lg=6),
                    dbc.Col(_graph("cmp-drawdown", 300), lg=6),
                    dbc.Col(_graph("cmp-correlation", 300), lg=6),
                    dbc.Col(_graph("cmp-scatter", 300), lg=6),
                ],
                className="g-2 mt-1",
            ),
        ]
    )
    return dbc.Card(
        dbc.Tabs(
            [
                dbc.Tab(performance, label="Performance", tab_id="performance"),
                dbc.Tab(comparison, label="Comparison", tab_id="comparison"),
            ],
            id="panel-tabs",
            active_tab="performance",
            className="sl-tabs",
        ),
        body=True,
        className="sl-card sl-panels mt-3",
    )


def strategy_picker(
    specs: list[str] | None, options: list[dict[str, str]] | None, current: str | None
) -> tuple[list[dict[str, str]], str | None]:
    """(options, value) of the panel's strategy select: the strategies switched on, labelled
    as in the sidebar (``options``); the current one kept while it stays switched on."""
    labels = {o["value"]: o["label"] for o in options or []}
    specs = specs or []
    choice = current if current in specs else (specs[0] if specs else None)
    return [{"label": labels.get(s, s), "value": s} for s in specs], choice


def panel_epoch(closed: list | None, symbol: str, timeframe: str) -> int | None:
    """The history length a panel refresh asks for: the second item of its ``[chart key,
    panel epoch, ...]`` when the key is this chart's (None: the whole current history)."""
    if not isinstance(closed, list) or len(closed) < 2 or not isinstance(closed[1], int):
        return None
    return closed[1] if closed[0] == chart_key(symbol, Timeframe.parse(timeframe)) else None


def strategy_runs(
    tracks: ChartTracks,
    symbol: str,
    timeframe: str,
    specs: list[str],
    preset: str,
    *,
    epoch: int | None = None,
) -> dict[str, tuple[Any, pd.Series, Any]]:
    """spec -> (backtest result over the chart's history, or its first ``epoch`` candles, its
    metrics, strategy)."""
    track = tracks.sync(symbol, timeframe)
    out = {}
    for spec in specs:
        strategy = build_strategy(spec)
        result = track.backtest(strategy, stop=epoch)
        metrics = compute_metrics(
            result.equity,
            result.trades,
            benchmark=result.benchmark,
            preset=preset,
            warmup_bars=strategy.benchmark_start(len(result.equity)),
        )
        out[spec] = (result, metrics, strategy)
    return out


def _track_epoch(
    tracks: ChartTracks, symbol: str, timeframe: str, epoch: int | None
) -> tuple[Any, int]:
    """(the series' track, the history length a panel shows: ``epoch`` or all of it)."""
    track = tracks.sync(symbol, timeframe)
    return track, track.candles.n if epoch is None else min(epoch, track.candles.n)


def performance_panel(
    tracks: ChartTracks,
    symbol: str,
    timeframe: str,
    spec: str,
    preset: str,
    theme: ChartTheme,
    *,
    epoch: int | None = None,
) -> tuple[Any, ...]:
    """(KPI cards, performance figure, returns distribution, monthly heatmap, trade rows,
    price decimals) over the first ``epoch`` candles (None: all): performance_kpis and
    performance_figures together, each part the shared one."""
    return (
        performance_kpis(tracks, symbol, timeframe, spec, preset, theme, epoch=epoch),
        *performance_figures(tracks, symbol, timeframe, spec, preset, theme, epoch=epoch),
    )


def performance_kpis(
    tracks: ChartTracks,
    symbol: str,
    timeframe: str,
    spec: str,
    preset: str,
    theme: ChartTheme,
    *,
    epoch: int | None = None,
) -> Any:
    """The panel's KPI cards over the first ``epoch`` candles (None: all): the backtest and
    its metrics, no figure (the cards are refreshed whenever the panel is in view, the
    figures only when they are: building them is most of a refresh's time)."""
    track, n = _track_epoch(tracks, symbol, timeframe, epoch)

    def cards() -> Any:
        result, metrics = _performance_run(track, tracks, symbol, timeframe, spec, preset, n)
        values = kpi_values(metrics, result.settings.cash)
        return kpi_cards(values, id_prefix="kpi", theme=theme, docs_url=FORMULAS_URL)

    return track.shared(("panel-performance-kpis", spec, preset, theme, n), cards)


def performance_figures(
    tracks: ChartTracks,
    symbol: str,
    timeframe: str,
    spec: str,
    preset: str,
    theme: ChartTheme,
    *,
    epoch: int | None = None,
) -> tuple[Any, ...]:
    """(performance figure, returns distribution, monthly heatmap, trade rows, price
    decimals) over the first ``epoch`` candles (None: all). Each of these, like the cards,
    is computed once per (strategy, preset, theme, history length) for every tab: shared."""
    track, n = _track_epoch(tracks, symbol, timeframe, epoch)

    def figures() -> tuple[Any, ...]:
        result, _ = _performance_run(track, tracks, symbol, timeframe, spec, preset, n)
        returns = period_returns(result.equity, preset)
        return (
            performance_figure(
                result.equity, result.trades, benchmark=result.benchmark, theme=theme
            ),
            returns_distribution_figure(returns, theme=theme),
            monthly_heatmap_figure(monthly_returns_table(result.equity), theme=theme),
            # numbered from the first trade (a row's id stays its trade's as trades close),
            # shown newest first; labelled by the rules of the executed trades
            trade_table_records(
                result.trades,
                labels=trip_labels(result.trades, track.frame(0, n), track.timeframe.delta),
            )[::-1],
            price_decimals(result.trades["entry_price"]) if len(result.trades) else 2,
        )

    return track.shared(("panel-performance-figures", spec, preset, theme, n), figures)


def label_filter(
    rows: list[dict], wanted: list[str] | None
) -> tuple[list[dict], list[dict[str, str]], Any]:
    """(the trade rows carrying every label of ``wanted``, the filter's options: each label
    some trade has, with its count, and the line that sums the chosen trades up against all
    of them)."""
    counts: dict[str, int] = {}
    for row in rows:
        for name in row.get("label_set", ()):
            counts[name] = counts.get(name, 0) + 1
    options = [
        {"label": f"{name} ({counts[name]})", "value": name} for name in LABELS if name in counts
    ]
    wanted = [w for w in wanted or [] if isinstance(w, str)]
    if not wanted:
        return rows, options, ""
    chosen = [r for r in rows if set(wanted) <= set(r.get("label_set", ()))]
    return chosen, options, _label_summary(chosen, len(rows), wanted)


def _label_summary(rows: list[dict], total: int, wanted: list[str]) -> html.Span:
    pnl = [r["pnl"] for r in rows if r.get("pnl") is not None]
    returns = [r["return_pct"] for r in rows if r.get("return_pct") is not None]
    wins = sum(p > 0 for p in pnl)
    gross_win = sum(p for p in pnl if p > 0)
    gross_loss = -sum(p for p in pnl if p < 0)
    parts = [f"{len(rows)} of {total} trades with {' + '.join(wanted)}"]
    if pnl:
        factor = "∞" if not gross_loss else f"{gross_win / gross_loss:.2f}"
        parts += [
            f"net PnL {sum(pnl):,.2f}",
            f"win rate {100 * wins / len(pnl):.1f}%",
            f"avg return {sum(returns) / len(returns):.2f}%" if returns else "",
            f"profit factor {factor}",
        ]
    return html.Span(" · ".join(p for p in parts if p), id="perf-label-summary-text")


def _performance_run(
    track: Any, tracks: ChartTracks, symbol: str, timeframe: str, spec: str, preset: str, n: int
) -> tuple[Any, pd.Series]:
    """(backtest result, metrics) of ``spec`` over the first ``n`` candles of ``track`` (the
    series' track, synced by the caller): once for the cards and the figures both."""

    def run() -> tuple[Any, pd.Series]:
        result, metrics, _ = strategy_runs(tracks, symbol, timeframe, [spec], preset, epoch=n)[spec]
        return result, metrics

    return track.shared(("panel-performance-run", spec, preset, n), run)


def comparison_panel(
    tracks: ChartTracks,
    symbol: str,
    timeframe: str,
    specs: list[str],
    preset: str,
    theme: ChartTheme,
    labels: dict[str, str],
    *,
    epoch: int | None = None,
) -> tuple[Any, ...]:
    """(table, equity overlay, drawdown overlay, correlation heatmap, risk/return scatter)
    over the first ``epoch`` candles (None: all); shared by every tab like the performance."""
    track, n = _track_epoch(tracks, symbol, timeframe, epoch)
    key = ("panel-comparison", tuple(specs), preset, theme, tuple(sorted(labels.items())), n)
    return track.shared(
        key, lambda: _comparison(tracks, symbol, timeframe, specs, preset, theme, labels, n)
    )


def _comparison(
    tracks: ChartTracks, symbol: str, timeframe: str, specs: list[str], preset: str,
    theme: ChartTheme, labels: dict[str, str], n: int,
) -> tuple[Any, ...]:  # fmt: skip
    runs = strategy_runs(tracks, symbol, timeframe, specs, preset, epoch=n)
    summaries = {
        labels.get(spec, spec): RunSummary(labels.get(spec, spec), r.equity, r.trades, m)
        for spec, (r, m, _) in runs.items()
    }
    table = comparison_table(summaries)
    return (
        comparison_table_component(table, best_per_row(table), theme=theme, table_id="cmp"),
        equity_overlay_figure(summaries, theme=theme),
        drawdown_overlay_figure(summaries, theme=theme),
        correlation_heatmap_figure(summaries, theme=theme),
        risk_return_scatter_figure(summaries, theme=theme),
    )


def export_payload(
    tracks: ChartTracks, symbol: str, timeframe: str, spec: str, preset: str, kind: str, fmt: str
) -> dict[str, Any]:
    """What dcc.Download sends for one export of the selected strategy."""
    result, metrics, strategy = strategy_runs(tracks, symbol, timeframe, [spec], preset)[spec]
    if kind == "signals":
        track = tracks.sync(symbol, timeframe)
        data: Any = track.view([], [strategy]).results[strategy_key(strategy)]
    else:
        data = {"trades": result.trades, "metrics": metrics, "equity": result.equity}[kind]
    payload, _suffix, mime = export_bytes(
        kind,
        data,
        fmt,
        benchmark=result.benchmark if kind == "equity" else None,  # type: ignore[arg-type]
    )
    filename = export_filename(kind, [strategy.name, symbol, timeframe], fmt)  # type: ignore[arg-type]
    return dcc.send_bytes(payload, filename, type=mime)
