"""Services the dashboard and the command line share: the live loop, chart data, backtest runs."""
