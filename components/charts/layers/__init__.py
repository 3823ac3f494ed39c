"""Layered charts: candles, indicators, strategy signals and trades, an account's fills,
composed into one figure.

>>> chart = compose(data, [CandlesLayer(), IndicatorLayer([request("rsi")]), TradeLayer()])
>>> chart.figure, chart.trace_index, chart.panels

A layer type is a module here with one ``@register_layer`` class, imported below: that import
is its registry line (``LAYER_TYPES[kind]``).
"""

from components.charts.layers.base import (
    LAYER_TYPES,
    PRICE,
    VOLUME,
    ChartData,
    ComposedChart,
    Layer,
    LayerTrace,
    Panel,
    StrategyView,
    apply_layer_delta,
    compose,
    compose_delta,
    make_layer,
    register_layer,
    row_heights,
)
from components.charts.layers.candles import CandlesLayer
from components.charts.layers.executions import (
    EXECUTION_COLUMNS,
    ExecutionLayer,
    empty_executions,
    execution_id,
)
from components.charts.layers.indicators import IndicatorLayer, compute_indicators, indicator_label
from components.charts.layers.signals import StrategySignalLayer
from components.charts.layers.trades import TradeLayer

__all__ = [
    "EXECUTION_COLUMNS",
    "LAYER_TYPES",
    "PRICE",
    "VOLUME",
    "CandlesLayer",
    "ChartData",
    "ComposedChart",
    "ExecutionLayer",
    "IndicatorLayer",
    "Layer",
    "LayerTrace",
    "Panel",
    "StrategySignalLayer",
    "StrategyView",
    "TradeLayer",
    "apply_layer_delta",
    "compose",
    "compose_delta",
    "compute_indicators",
    "empty_executions",
    "execution_id",
    "indicator_label",
    "make_layer",
    "register_layer",
    "row_heights",
]
