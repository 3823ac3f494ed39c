"""Paper trading's stateful live parts: deployments and their runner, the paper broker (orders,
fills, positions, the account), risk limits and alerts (docs/trading.md)."""
