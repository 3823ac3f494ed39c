"""Annualised figures of a series under a year are named as not meaningful (GIPS), in every
metrics function, the command line and the KPI cards; a year or more shows them."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import app
from analytics.metrics import IncrementalMetrics, compute_metrics, notes, returns_metrics
from analytics.metrics.notes import ANNUALISED
from components.panels.performance.kpis import SHORT_SPAN, kpi_values


def _equity(days: int) -> pd.Series:
    index = pd.date_range("2024-01-01", periods=days + 1, freq="D", tz="UTC")
    return pd.Series(100 * np.cumprod(np.r_[1.0, np.full(days, 1.01)]), index=index)


def test_one_day_of_one_percent_is_not_annualised():
    stats = compute_metrics(_equity(1))
    assert stats["CAGR [%]"] > 1_000  # the number a trader must not be shown ...
    assert set(notes(stats)) == set(ANNUALISED)  # ... is named instead
    assert "1 day, under a year (GIPS)" in notes(stats)["CAGR [%]"]


def test_a_year_or_more_shows_every_figure():
    assert notes(compute_metrics(_equity(400))) == {}
    returns = _equity(400).pct_change().dropna()
    assert notes(returns_metrics(returns, periods_per_year=365)) == {}


def test_returns_and_incremental_metrics_name_them_too():
    returns = _equity(30).pct_change().dropna()
    assert set(notes(returns_metrics(returns, periods_per_year=365))) == set(ANNUALISED) & set(
        returns_metrics(returns, periods_per_year=365).index
    )
    live = IncrementalMetrics(preset="quantstats", periods_per_year=365)
    for time, value in _equity(30).items():
        live.add_bar(value, time)
    assert "CAGR [%]" in notes(live.metrics())


def test_kpi_cards_show_n_a_for_them():
    kpis = {k.key: k for k in kpi_values(compute_metrics(_equity(10)), 100)}
    assert kpis["Calmar Ratio"].text == SHORT_SPAN
    assert kpis["Return [%]"].text != SHORT_SPAN


@pytest.mark.parametrize("as_json", [False, True])
def test_the_metrics_command_says_why(tmp_path, capsys, as_json):
    path = tmp_path / "equity.csv"
    path.write_text("timestamp,equity\n2024-01-01,100\n2024-01-02,101\n")
    assert app.main(["metrics", str(path), *(["--json"] if as_json else [])]) == 0
    out = capsys.readouterr().out
    if as_json:
        document = json.loads(out)
        assert document["CAGR [%]"] is None
        assert "under a year" in document["notes"]["CAGR [%]"]
    else:
        line = next(line for line in out.splitlines() if line.startswith("CAGR [%]"))
        assert "n/a (not annualised: the series spans 1 day, under a year (GIPS))" in line
