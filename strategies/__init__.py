"""Strategies and the StrategyDataIntegrator (strategies/data_integration.py)."""
