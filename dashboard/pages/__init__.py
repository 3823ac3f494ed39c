"""The app's pages, one package each: live (/), backtest (/backtest), alerts (/alerts),
formulas (/docs/metrics).

A page package keeps its layout apart from its callbacks (``callbacks.py``: thin wrappers over
plain functions of the page's other modules) and re-exports what the app's shell needs.
"""
