"""Candlestick + volume chart: a full figure, and the compact delta a live tick sends.

Trace order is fixed, so a patch can address traces by index:
0 closed candles, 1 the forming candle, 2 up volume, 3 down volume, 4 forming volume.
Components never query anything: they receive frames and return figures.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from components.charts.style import axis_style, style_figure
from components.charts.theme import DARK, ChartTheme, rgba
from market.calendars import SAMPLE_BARS, infer_calendar
from market.candles import Candle
from market.timeframes import Timeframe, timestamp_ms, to_epoch_ms

CLOSED, FORMING, VOLUME_UP, VOLUME_DOWN, VOLUME_FORMING = range(5)


def x_labels(index: pd.DatetimeIndex, timeframe: Timeframe) -> list[str]:
    """Compact x values: dates for daily bars and above, minutes below (UTC, what plotly reads)."""
    fmt = "%Y-%m-%d" if timeframe.seconds >= 86400 else "%Y-%m-%d %H:%M"
    if len(index) <= 16:  # a live tick's few bars: ~5 us each instead of ~100 us per call
        return [ts.strftime(fmt) for ts in index]
    return list(index.strftime(fmt))


def compact(values: np.ndarray | list[float]) -> list[float]:
    """Values to 10 significant digits, as plain lists.

    Lists, not numpy arrays: plotly ships arrays as base64 typed arrays, which a live patch's
    "extend" cannot append to. Ten digits keep every price and volume exact to 1e-10 while
    a live tick stays small (full repr floats take 17 digits).
    """
    return [float(f"{v:.10g}") for v in np.asarray(values, dtype=np.float64).tolist()]


def candle_figure(
    closed: pd.DataFrame,
    forming: Candle | None,
    *,
    symbol: str,
    timeframe: Timeframe,
    view_bars: int = 150,
    theme: ChartTheme = DARK,
) -> go.Figure:
    """The whole chart; the view opens on the last `view_bars` bars with the axes fitted."""
    x = x_labels(closed.index, timeframe)
    up = (closed["close"] >= closed["open"]).to_numpy()
    volume = closed["volume"].to_numpy()
    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[0.78, 0.22], vertical_spacing=0.015
    )
    fig.add_trace(
        go.Candlestick(
            x=x,
            open=compact(closed["open"]),
            high=compact(closed["high"]),
            low=compact(closed["low"]),
            close=compact(closed["close"]),
            name=symbol,
            increasing={"line": {"color": theme.up, "width": 1}, "fillcolor": theme.up},
            decreasing={"line": {"color": theme.down, "width": 1}, "fillcolor": theme.down},
        ),
        row=1,
        col=1,
    )
    fx, fo, fh, fl, fc, fv = _forming_values(forming, timeframe)
    forming_style = {
        "line": {"color": theme.forming, "width": 1.5},
        "fillcolor": rgba(theme.forming, 0.25),
    }
    fig.add_trace(
        go.Candlestick(
            x=fx,
            open=fo,
            high=fh,
            low=fl,
            close=fc,
            name="forming",
            increasing=forming_style,
            decreasing=forming_style,
        ),
        row=1,
        col=1,
    )
    for name, mask, color in (("volume up", up, theme.up), ("volume down", ~up, theme.down)):
        fig.add_trace(
            go.Bar(
                x=[v for v, keep in zip(x, mask, strict=True) if keep],
                y=compact(volume[mask]),
                name=name,
                marker={"color": rgba(color, theme.volume_alpha), "line": {"width": 0}},
                showlegend=False,
                hovertemplate="volume %{y:,.0f}<extra></extra>",
            ),
            row=2,
            col=1,
        )
    fig.add_trace(
        go.Bar(
            x=fx,
            y=fv,
            name="forming volume",
            showlegend=False,
            marker={"color": rgba(theme.forming, 0.6), "line": {"width": 0}},
            hovertemplate="forming volume %{y:,.0f}<extra></extra>",
        ),
        row=2,
        col=1,
    )
    _style(fig, closed, forming, symbol, timeframe, view_bars, theme)
    return fig


def _forming_values(forming: Candle | None, timeframe: Timeframe) -> tuple[list, ...]:
    if forming is None:
        return [], [], [], [], [], []
    x = x_labels(pd.DatetimeIndex([forming.ts]), timeframe)
    values = compact([forming.open, forming.high, forming.low, forming.close, forming.volume])
    return x, *([v] for v in values)


# the candle chart's own margins: right, the price scale; top, a strip for the legend and the
# mode bar, off the bars
_MARGIN = {"l": 10, "r": 72, "t": 34, "b": 30}
LEGEND_BAND_FONT = 16  # the font size of the legend's empty title: a row the mode bar's height


def _style(
    fig: go.Figure,
    closed: pd.DataFrame,
    forming: Candle | None,
    symbol: str,
    timeframe: Timeframe,
    view_bars: int,
    theme: ChartTheme,
) -> None:
    style_figure(fig, theme, margin=_MARGIN, axis=axis_style(theme, spikes=True), automargin=False)
    fig.update_layout(
        uirevision=chart_key(symbol, timeframe),  # keeps the trader's zoom across live patches
        dragmode="pan",
        bargap=0.15,
        barmode="overlay",
        # the legend's rows start below the mode bar's strip (top right), never under it: an
        # empty title row above them as tall as the mode bar (the top margin grows to fit)
        legend_title={"text": " ", "side": "top", "font": {"size": LEGEND_BAND_FONT}},
    )
    fig.update_xaxes(type="date")
    fig.update_yaxes(tickformat=",.2f", row=1, col=1)
    fig.update_yaxes(tickformat=".2s", row=2, col=1)
    if breaks := rangebreaks(closed.index, timeframe):
        fig.update_xaxes(rangebreaks=breaks)
    _fit_view(fig, closed, forming, timeframe, view_bars)


_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def rangebreaks(index: pd.DatetimeIndex, timeframe: Timeframe) -> list[dict]:
    """plotly ``rangebreaks`` hiding the times the market of these bars is closed, by the
    calendar they follow (:func:`market.calendars.infer_calendar`), as a trading chart does:

    - its closed weekdays: ``{"pattern": "day of week", "bounds": ["sat", "mon"]}``;
    - outside its session: ``{"pattern": "hour", "bounds": [close, open]}`` (UTC hours);
    - the other gaps holding a whole day (holidays, an FX weekend from Friday 22:00 to
      Sunday 22:00): ``{"values": [gap starts], "dvalue": gap ms}``, one per gap length.

    None for a market open around the clock (crypto). The patterns also hide the closed times
    of bars still to come; the listed gaps are those of ``index``. The bars' length is the
    timeframe or, on a level-of-detail view's buckets, their closest spacing.
    """
    if len(index) < 2:
        return []
    # a bucket of a level-of-detail view spans k bars: its starts are k bars apart at least
    spacing = pd.Timedelta(int(np.diff(to_epoch_ms(index[-SAMPLE_BARS:])).min()), "ms")
    bar = max(timeframe.delta, spacing)
    calendar = infer_calendar(index, bar)
    if calendar.always_open:
        return []
    breaks: list[dict] = [
        {"pattern": "day of week", "bounds": [_WEEKDAYS[first], _WEEKDAYS[(last + 1) % 7]]}
        for first, last in _runs(calendar.closed_days)
    ]
    if calendar.session is not None:
        open_, close = calendar.session
        breaks.append({"pattern": "hour", "bounds": [close, open_]})
    starts: dict[int, list[str]] = {}
    for start, end in calendar.closed_gaps(index, bar):
        if not calendar.is_closed(start, end):  # not hidden by the patterns already
            length = int((end - start) / pd.Timedelta(milliseconds=1))
            starts.setdefault(length, []).append(start.strftime("%Y-%m-%d %H:%M"))
    breaks += [{"values": values, "dvalue": length} for length, values in sorted(starts.items())]
    return breaks


def _runs(days: tuple[int, ...]) -> list[tuple[int, int]]:
    """Runs of consecutive weekdays, the week taken round: (5, 6) -> [(5, 6)]; (0, 6) ->
    [(6, 0)]."""
    runs: list[list[int]] = []
    for day in sorted(days):
        if runs and runs[-1][1] == day - 1:
            runs[-1][1] = day
        else:
            runs.append([day, day])
    if len(runs) > 1 and runs[0][0] == 0 and runs[-1][1] == 6:
        runs[0][0] = runs.pop()[0]
    return [(first, last) for first, last in runs]


def _fit_view(
    fig: go.Figure,
    closed: pd.DataFrame,
    forming: Candle | None,
    timeframe: Timeframe,
    view_bars: int,
) -> None:
    """Open on the most recent bars, with price and volume axes fitted to what is visible."""
    view = closed.iloc[-view_bars:]
    span = price_span(closed, forming, view_bars)
    if span is None:
        return
    last = forming.ts if forming is not None else view.index[-1]
    first = view.index[0] if len(view) else last
    right = last + timeframe.delta * 3  # room for the next bars
    fmt = "%Y-%m-%d %H:%M"
    fig.update_xaxes(range=[first.strftime(fmt), right.strftime(fmt)])
    fig.update_yaxes(range=padded(*span), row=1, col=1)
    vols = [*view["volume"].to_numpy(), *([forming.volume] if forming is not None else [])]
    fig.update_yaxes(range=[0, float(np.max(vols)) * 1.15 or 1.0], row=2, col=1)


def price_span(
    closed: pd.DataFrame, forming: Candle | None, view_bars: int
) -> tuple[float, float] | None:
    """Lowest low and highest high of the last ``view_bars`` closed bars and the forming bar
    (None: no bar)."""
    view = closed.iloc[-view_bars:]
    lows = [*view["low"].to_numpy(), *([forming.low] if forming is not None else [])]
    highs = [*view["high"].to_numpy(), *([forming.high] if forming is not None else [])]
    if not lows:
        return None
    return float(np.min(lows)), float(np.max(highs))


def padded(low: float, high: float) -> list[float]:
    """An axis range around [low, high]: 6% of the span on each side (1% of the value for a
    flat span), the rule the browser applies too (assets/chart_view.js, fit)."""
    pad = (high - low) * 0.06 or abs(high) * 0.01 or 1.0
    return [low - pad, high + pad]


def chart_key(symbol: str, timeframe: Timeframe) -> str:
    """Which series a figure shows; live deltas carry it so none lands on another chart."""
    return f"{symbol}|{timeframe.label}"


def candle_delta(
    new_closed: pd.DataFrame, forming: Candle | None, *, symbol: str, timeframe: Timeframe
) -> dict:
    """Only what changed, compactly: the newly closed bars and the forming bar.

    ``{"k": chart key, "c": [[x, open, high, low, close, volume], ...], "f": [...] or None,
    "last": epoch ms of the last row or None}``. The browser turns it into a dash Patch
    (assets/chart_view.js, ``applyDelta``): rows newer than the figure's last closed bar are
    appended to trace 0 and to the up or down volume trace (2 if close >= open, else 3); the
    forming bar replaces traces 1 and 4. Values are those the full figure would hold.
    """
    x = x_labels(new_closed.index, timeframe)
    columns = [compact(new_closed[c]) for c in ("open", "high", "low", "close", "volume")]
    rows = [[label, *values] for label, *values in zip(x, *columns, strict=True)]
    return {
        "k": chart_key(symbol, timeframe),
        "c": rows,
        "f": forming_row(forming, timeframe),
        "last": timestamp_ms(new_closed.index[-1]) if len(new_closed) else None,
    }


def forming_row(forming: Candle | None, timeframe: Timeframe) -> list | None:
    """A delta's forming bar, ``[x, open, high, low, close, volume]`` (None without one): the
    ``"f"`` of :func:`candle_delta`, which a tick whose bars did not close sends alone."""
    fx, *values = _forming_values(forming, timeframe)
    return [fx[0], *(v[0] for v in values)] if fx else None
