"""Which figures of a metrics result are not meaningful, and why: shown as "n/a" with the
reason instead of a number.

Rule (the GIPS standards: returns for periods of less than one year must not be
annualised): when the series spans less than one year, the figures that extrapolate its return
to a year are not shown: Return (Ann.) [%], CAGR [%] and Calmar Ratio (CAGR over the maximum
drawdown). One day of +1 % would otherwise show a CAGR above 1,000 %. The numbers are
still computed (the conventions and their tests are unchanged); ``notes(stats)`` names them.

>>> stats = compute_metrics(equity)              # 20 trading days
>>> notes(stats)["CAGR [%]"]
'not annualised: the series spans 28 days, under a year (GIPS)'
"""

from __future__ import annotations

import math

import pandas as pd

ANNUALISED = ("Return (Ann.) [%]", "CAGR [%]", "Calmar Ratio")
NOTES_ATTR = "not_meaningful"


def mark_short_span(stats: pd.Series, years: float) -> pd.Series:
    """Record in ``stats.attrs`` the annualised figures a span of ``years`` cannot support."""
    if not math.isnan(years) and years < 1:
        days = years * 365.25
        if days >= 1:
            span = f"{days:.0f} day" + ("s" if round(days) != 1 else "")
        else:
            span = f"{days * 24:.1f} hours"
        reason = f"not annualised: the series spans {span}, under a year (GIPS)"
        stats.attrs[NOTES_ATTR] = {key: reason for key in ANNUALISED if key in stats.index}
    return stats


def notes(stats: pd.Series) -> dict[str, str]:
    """Figure name -> why it is not meaningful (empty when every figure is)."""
    return dict(stats.attrs.get(NOTES_ATTR, {}))
