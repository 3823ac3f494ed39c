"""Panels below the chart: the performance panel (KPIs, equity, drawdown, returns, trades) and
the strategy comparison. Pure functions: frames in, plotly figures and dash components out."""
