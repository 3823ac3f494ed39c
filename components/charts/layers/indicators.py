"""The indicators layer: overlays on the price, oscillators in panels of their own.

>>> layer = IndicatorLayer([request("ema", timeperiod=20), request("bbands"), request("rsi")])
>>> [p.name for p in layer.panels(data)]
['rsi(timeperiod=14)']
>>> indicator_label(request("bbands"))
'BB 20,2'

Overlays (SMA, EMA, WMA, VWAP; Bollinger and Donchian as a band with a translucent fill) go
on the price panel; RSI, MACD, Stochastic, ATR and OBV each get a panel (one per request) with
the spec's reference levels. Lines take the theme's ``line_palette`` in order (overlays and
sub-panel lines each from its start: distinct within a panel); the MACD
histogram is coloured per bar (up colour when >= 0, down colour below), so its live extend
carries ``marker.color`` too. Warm-up rows (NaN) are left out of every trace.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from components.charts.candles import compact
from components.charts.layers.base import (
    PRICE,
    ChartData,
    Columns,
    LayerTrace,
    Panel,
    finite_rows,
    register_layer,
)
from components.charts.theme import ChartTheme, rgba
from indicators.registry import IndicatorRequest

_SHORT = {
    "sma": "SMA",
    "ema": "EMA",
    "wma": "WMA",
    "bbands": "BB",
    "rsi": "RSI",
    "macd": "MACD",
    "stoch": "Stoch",
    "atr": "ATR",
    "donchian": "DC",
    "obv": "OBV",
    "vwap": "VWAP",
}
_OUTPUT_NAMES = {"signal": "signal", "hist": "histogram", "k": "%K", "d": "%D"}
_BANDS = frozenset({"bbands", "donchian"})
_FIXED_RANGES = {"rsi": (0.0, 100.0), "stoch": (0.0, 100.0)}
_TICKFORMATS = {"rsi": ".0f", "stoch": ".0f", "obv": ".3s"}
_HOVER_FORMATS = {"rsi": ".2f", "stoch": ".2f", "obv": ",.4~s"}
_DEFAULT_HOVER = ",.6~g"  # six significant digits: prices, MACD and ATR alike
HIST_OPACITY = 0.7


def indicator_label(req: IndicatorRequest) -> str:
    """The legend and panel name: ``EMA 20``, ``BB 20,2``, ``MACD 12,26,9``, ``RSI 14 (1h)``."""
    params = req.param_dict
    values = [params[p.name] for p in req.spec.params]
    if req.name == "bbands" and params["nbdevdn"] == params["nbdevup"]:
        values = values[:2]
    text = ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)
    label = f"{_SHORT.get(req.name, req.name.upper())} {text}".strip()
    return f"{label} ({req.timeframe})" if req.timeframe else label


def compute_indicators(
    candles: pd.DataFrame, requests: Iterable[IndicatorRequest]
) -> dict[str, pd.DataFrame]:
    """``{req.key: frame of its outputs on candles.index}``, what :class:`ChartData` holds.

    >>> compute_indicators(candles, [request("rsi")])["rsi(timeperiod=14)"].columns.tolist()
    ['rsi']
    """
    out = {}
    for req in requests:
        values = (
            req.spec.compute(candles, req.param_dict)
            if len(candles)
            else {o: np.empty(0) for o in req.spec.outputs}
        )
        out[req.key] = pd.DataFrame(values, index=candles.index, columns=list(req.spec.outputs))
    return out


def indicator_values(data: ChartData, req: IndicatorRequest) -> tuple[pd.DatetimeIndex, dict]:
    """(index, {output: float array}) of `req`: from ``data.indicators``, else computed on the
    chart's candles (a request on another timeframe must be supplied)."""
    frame = data.indicators.get(req.key)
    if frame is None:
        if req.timeframe not in (None, data.timeframe.label):
            raise KeyError(f"{req.key}: values on another timeframe must be in data.indicators")
        frame = compute_indicators(data.candles, [req])[req.key]
    values = {}
    for output in req.spec.outputs:
        column = output if output in frame.columns else req.column(output)
        values[output] = frame[column].to_numpy(np.float64)
    return frame.index, values


@dataclass(frozen=True)
class _Line:
    output: str
    color: str
    style: str  # "line", "edge" (band edge), "fill" (lower edge, filled to the edge before it),
    # "middle" (dashed), "hist" (bars coloured by sign)


def _plan(requests: Sequence[IndicatorRequest], theme: ChartTheme) -> list[list[_Line]]:
    """Each request's traces in order. Colours come from the palette in turn, one sequence for
    the overlays (distinct on the price panel) and one for the sub-panel lines."""
    palette = theme.line_palette
    used = {True: 0, False: 0}  # overlay -> palette entries taken

    def take(overlay: bool) -> str:
        color = palette[used[overlay] % len(palette)]
        used[overlay] += 1
        return color

    plans = []
    for req in requests:
        overlay = req.spec.overlay
        if req.name in _BANDS:
            color = take(overlay)
            plan = [_Line("upper", color, "edge"), _Line("lower", color, "fill")]
            plan.append(_Line("middle", color, "middle"))
        else:
            plan = [
                _Line(output, "", "hist")
                if req.name == "macd" and output == "hist"
                else _Line(output, take(overlay), "line")
                for output in req.spec.outputs
            ]
        plans.append(plan)
    return plans


def _hist_colors(values: list[float], theme: ChartTheme) -> list[str]:
    return [theme.up if v >= 0 else theme.down for v in values]


@register_layer
@dataclass(frozen=True)
class IndicatorLayer:
    """Indicator lines for `requests` (duplicates dropped), in order.

    Trace ids: ``ind:<key>:<output>`` and ``ind:<key>:<output>:forming`` (the forming bar's
    value as a dot, or a bar for the MACD histogram, when ``data.forming_indicators`` holds it).
    """

    kind: ClassVar[str] = "indicators"
    requests: tuple[IndicatorRequest, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "requests", tuple(dict.fromkeys(self.requests)))

    def panel_of(self, req: IndicatorRequest) -> str:
        return PRICE if req.spec.overlay else req.key

    def panels(self, data: ChartData) -> list[Panel]:
        return [
            Panel(
                req.key,
                title=indicator_label(req),
                levels=tuple(req.spec.levels),
                range=_FIXED_RANGES.get(req.name),
                tickformat=_TICKFORMATS.get(req.name, ""),
            )
            for req in self.requests
            if not req.spec.overlay
        ]

    def traces(self, data: ChartData, theme: ChartTheme) -> list[LayerTrace]:
        out: list[LayerTrace] = []
        for req, plan in zip(self.requests, _plan(self.requests, theme), strict=True):
            index, values = indicator_values(data, req)
            label = indicator_label(req)
            panel = self.panel_of(req)
            forming = self._forming(data, req)
            lines, dots = [], []
            for i, line in enumerate(plan):
                idx, y = finite_rows(index, values[line.output])
                style = _trace_style(req, line, label, theme, first=i == 0)
                trace = _make(line, data.x(idx), y, style, theme)
                lines.append(LayerTrace(_id(req, line), panel, trace))
                value = forming[line.output]
                dot = _make(line, value["x"], value["y"], _forming_style(style), theme)
                dots.append(LayerTrace(_id(req, line) + ":forming", panel, dot))
            out.extend(lines + dots)
        return out

    def extend(
        self, data: ChartData, since: pd.Timestamp | None, theme: ChartTheme
    ) -> dict[str, Columns]:
        out: dict[str, Columns] = {}
        for req, plan in zip(self.requests, _plan(self.requests, theme), strict=True):
            index, values = indicator_values(data, req)
            start = 0 if since is None else int(index.searchsorted(since, side="right"))
            labels = data.x(index[start:])  # once per request: its lines share the bars
            for line in plan:
                tail = np.asarray(values[line.output][start:], dtype=np.float64)
                keep = np.isfinite(tail)
                x = labels if keep.all() else [labels[i] for i in np.flatnonzero(keep)]
                y = compact(tail[keep])
                columns: Columns = {"x": x, "y": y}
                if line.style == "hist":
                    columns["marker.color"] = _hist_colors(y, theme)
                out[_id(req, line)] = columns
        return out

    def replace(self, data: ChartData, theme: ChartTheme) -> dict[str, Columns]:
        if not data.forming_indicators:
            return {}  # no forming values given: the forming dots stay as built (empty)
        out: dict[str, Columns] = {}
        for req, plan in zip(self.requests, _plan(self.requests, theme), strict=True):
            forming = self._forming(data, req)
            for line in plan:
                value = dict(forming[line.output])
                if line.style == "hist":
                    value["marker.color"] = _hist_colors(value["y"], theme)
                out[_id(req, line) + ":forming"] = value
        return out

    def _forming(self, data: ChartData, req: IndicatorRequest) -> dict[str, Columns]:
        """Per output, the forming bar's value (empty without a forming bar or its value)."""
        candle = data.shown_forming
        peek = data.forming_indicators.get(req.key, {}) if candle is not None else {}
        out: dict[str, Columns] = {}
        for output in req.spec.outputs:
            value = float(peek.get(output, np.nan))
            if candle is None or not np.isfinite(value):
                out[output] = {"x": [], "y": []}
            else:
                out[output] = {"x": data.x(pd.DatetimeIndex([candle.ts])), "y": compact([value])}
        return out


def _id(req: IndicatorRequest, line: _Line) -> str:
    return f"ind:{req.key}:{line.output}"


def _trace_style(
    req: IndicatorRequest, line: _Line, label: str, theme: ChartTheme, *, first: bool
) -> dict[str, Any]:
    name = label
    if len(req.spec.outputs) > 1 and not (req.name == "macd" and line.output == "macd"):
        name = f"{label} {_OUTPUT_NAMES.get(line.output, line.output)}"
    fmt = _HOVER_FORMATS.get(req.name, _DEFAULT_HOVER)
    style: dict[str, Any] = {
        "name": label,
        "legendgroup": f"ind:{req.key}",
        "showlegend": bool(req.spec.overlay and first),
        "hovertemplate": f"{name} %{{y:{fmt}}}<extra></extra>",
    }
    if line.style == "hist":
        style["opacity"] = HIST_OPACITY
        return style
    width = 1.0 if line.style in ("edge", "fill", "middle") else 1.5
    style["line"] = {"color": line.color, "width": width}
    if line.style == "middle":
        style["line"]["dash"] = "dash"
    if line.style == "fill":
        style["fill"] = "tonexty"
        style["fillcolor"] = rgba(line.color, theme.band_alpha)
    return style


def _forming_style(style: dict[str, Any]) -> dict[str, Any]:
    """The forming value: a dot of the line's colour (a bar for the histogram), unlegended."""
    dot = {key: value for key, value in style.items() if key not in ("fill", "fillcolor", "line")}
    dot["showlegend"] = False
    dot["hovertemplate"] = style["hovertemplate"].replace("<extra>", " (forming)<extra>")
    if "line" in style:
        dot["mode"] = "markers"
        dot["marker"] = {"color": style["line"]["color"], "size": 5}
    return dot


def _make(line: _Line, x: list, y: list, style: dict[str, Any], theme: ChartTheme) -> Any:
    if line.style == "hist":
        marker = {"color": _hist_colors(y, theme), "line": {"width": 0}}
        return go.Bar(x=x, y=y, marker=marker, **style, _validate=False)
    return go.Scatter(x=x, y=y, **{"mode": "lines", **style}, _validate=False)
