"""Each metric's formula in one line, what changes per preset, and its docs/metrics.md anchor.

>>> FORMULAS["Sharpe Ratio"].href()
'/docs/metrics#sharpe-ratio'
>>> metric_slug("Max. Drawdown [%]")
'max-drawdown'

The full formulas are in docs/metrics.md (served as HTML at :data:`METRICS_DOC`), under the
anchor ``metric_slug(name)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

METRICS_DOC = "/docs/metrics"  # docs/metrics.md as HTML (app.py serves it)
NET_PNL = "Net PnL [$]"


def metric_slug(key: str) -> str:
    """``"Max. Drawdown [%]"`` -> ``"max-drawdown"``: the metric's id part and docs anchor."""
    name = re.sub(r"\[[^\]]*\]", "", key).lower()
    return re.sub(r"[^a-z0-9]+", "-", name).strip("-")


@dataclass(frozen=True)
class Formula:
    """A metric's formula in one line, what changes per preset, and its docs/metrics.md anchor."""

    text: str
    note: str
    anchor: str

    def href(self, doc: str = METRICS_DOC) -> str:
        return f"{doc}#{self.anchor}"


def _formula(key: str, text: str, note: str) -> tuple[str, Formula]:
    return key, Formula(text, note, metric_slug(key))


_SAME = "Same under every preset."
_PER_TRADE = "Per trade under every preset."
FORMULAS: dict[str, Formula] = dict(
    [
        _formula(NET_PNL, "Equity Final - initial cash", _SAME + " Net of all costs."),
        _formula("Return [%]", "(V_end - V_0) / V_0 x 100", _SAME),
        _formula("Buy & Hold Return [%]", "(B_end - B_warmup) / B_warmup x 100", _SAME),
        _formula(
            "Return (Ann.) [%]",
            "((1 + g)^N - 1) x 100, g = geometric mean period return",
            "backtesting.py as shown; quantstats: mean(r) x N; trade: mean(trade R) x trades/yr.",
        ),
        _formula(
            "CAGR [%]",
            "((V_end / V_0)^(1 / years) - 1) x 100",
            "Calendar years (backtesting.py, trade); quantstats: years = #returns / 252.",
        ),
        _formula(
            "Volatility (Ann.) [%]",
            "sd(r) x sqrt(N) x 100",
            "quantstats as shown; backtesting.py compounds: sqrt((var + (1+g)^2)^N - (1+g)^2N);"
            " trade: sd of trade returns, ddof 0.",
        ),
        _formula(
            "Sharpe Ratio",
            "(Return (Ann.) - rf) / Volatility (Ann.)",
            "backtesting.py: geometric annualisation; quantstats: mean(r - rf_p) / sd x sqrt(252);"
            " trade: on trade returns, N = trades per year.",
        ),
        _formula(
            "Sortino Ratio",
            "(Return (Ann.) - rf) / (sqrt(mean(min(r, 0)^2)) x sqrt(N))",
            "backtesting.py as shown; quantstats: mean(x) / sqrt(sum(min(x, 0)^2) / n) x sqrt(N);"
            " trade: the same on trade returns.",
        ),
        _formula(
            "Calmar Ratio",
            "Return (Ann.) / |Max. Drawdown|",
            "backtesting.py as shown; quantstats and trade: CAGR / |Max. Drawdown|.",
        ),
        _formula(
            "Max. Drawdown [%]",
            "-max(1 - V_t / max(V_0..V_t)) x 100",
            _SAME + " On the bar equity.",
        ),
        _formula("Avg. Drawdown [%]", "-mean(depth of each drawdown episode) x 100", _SAME),
        _formula(
            "Max. Drawdown Duration",
            "longest time from a peak to the bar that regains it",
            _SAME + " Ceiled to the data resolution.",
        ),
        _formula("Ulcer Index [%]", "sqrt(sum(dd^2) / (n - ddof)) x 100", "ddof 0 for trade."),
        _formula("Exposure Time [%]", "share of bars inside some trade x 100", _SAME),
        _formula("# Trades", "number of closed trades", _SAME),
        _formula("Win Rate [%]", "share of trades with pnl > 0 x 100", _PER_TRADE),
        _formula(
            "Profit Factor",
            "sum(R > 0) / -sum(R < 0), R = trade return",
            _PER_TRADE + " NaN without a losing trade.",
        ),
        _formula("Expectancy [%]", "mean(R) x 100", _PER_TRADE),
        _formula("SQN", "sqrt(#trades) x mean(pnl) / std(pnl, ddof 1)", _PER_TRADE),
        _formula("Avg. Trade Duration", "mean(exit time - entry time)", _PER_TRADE),
        _formula(
            "Omega Ratio",
            "sum(max(x, 0)) / -sum(min(x, 0))",
            "On period returns; trade: on trade returns.",
        ),
        _formula(
            "VaR 95% (Hist.) [%]",
            "5% quantile of r x 100",
            "On period returns; trade: on trade returns.",
        ),
    ]
)
