"""Backtest engine, performance metrics, labels, attribution, TCA and exports (next issues)."""
