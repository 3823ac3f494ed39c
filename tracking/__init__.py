"""Trade tracking: executed trades from every source recorded with their market context,
labels and realised PnL (docs/tracking.md).

- :mod:`tracking.tracker`: :class:`~tracking.tracker.TradeTracker`, the one way trades are
  recorded (bulk, and streamed with group commits);
- :mod:`tracking.importers`: freqtrade and Hummingbot databases, CSV files of fills.
"""
