"""Attribution (analytics/attribution): tables worked by hand, the variance contributions
adding up to the variance, alpha/beta equal to empyrical-reloaded on the bundled SP500 and
NASDAQ series and on random data, the factor regression against numpy's lstsq, textbook
formulas and scipy, factors without look-ahead, and the live state equal to a recomputation
after every trip of a stream."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from analytics.attribution import (
    ALL,
    DIMENSIONS,
    NO_LABEL,
    UNKNOWN,
    AttributionState,
    alpha_beta,
    benchmark_returns,
    daily_closes,
    daily_pnl,
    daily_returns,
    factor_regression,
    market_factors,
    pattern_analysis,
    pnl_attribution,
    risk_attribution,
    size_edges,
)
from analytics.attribution.groups import expand, group_keys, trip_keys
from market.sample_data import load_sample

EMPYRICAL_TOL = 1e-9


def trip(
    net: float,
    *,
    ret: float | None = None,
    symbol: str = "BTC",
    strategy: str = "s1",
    entry: str = "2024-01-01 10:00",
    exit: str = "2024-01-01 12:00",
    price: float = 100.0,
    volume: float = 1.0,
    labels: tuple[str, ...] = (),
    regime: str | None = "medium",
    session: str | None = "regular",
) -> dict:
    """One round-trip row of analytics.round_trips' frame, with labels and context."""
    entry_time, exit_time = pd.Timestamp(entry, tz="UTC"), pd.Timestamp(exit, tz="UTC")
    return {
        "account_id": "acc",
        "strategy_id": strategy,
        "symbol": symbol,
        "direction": "long",
        "entry_time": entry_time,
        "exit_time": exit_time,
        "entry_price": price,
        "exit_price": price + net / volume,
        "volume": volume,
        "holding_s": (exit_time - entry_time).total_seconds(),
        "gross_pnl": net,
        "fees": 0.0,
        "net_pnl": net,
        "return": net / (price * volume) if ret is None else ret,
        "labels": labels,
        "volatility_regime": regime,
        "market_session": session,
    }


def frame(*rows: dict) -> pd.DataFrame:
    out = pd.DataFrame(list(rows))
    for column in ("entry_time", "exit_time"):
        out[column] = pd.to_datetime(out[column], utc=True)
    return out


def random_trips(n: int, seed: int = 7) -> pd.DataFrame:
    """n trips in exit order over ~60 days: labels 0-3 of five, context with gaps."""
    rng = np.random.default_rng(seed)
    names = ["breakout", "momentum", "scalping", "high_volatility", "quick_exit"]
    entry = pd.Timestamp("2024-03-01", tz="UTC") + pd.to_timedelta(
        np.sort(rng.integers(0, 60 * 24 * 60, n)), unit="min"
    )
    rows = []
    for i in range(n):
        labels = tuple(rng.choice(names, int(rng.integers(0, 4)), replace=False))
        hold = pd.Timedelta(minutes=int(rng.integers(1, 4 * 24 * 60)))
        rows.append(
            trip(
                float(rng.normal(5, 40)),
                symbol=str(rng.choice(["BTC", "ETH", "SOL"])),
                strategy=str(rng.choice(["ema", "rsi"])),
                entry=str(entry[i]),
                exit=str(entry[i] + hold),
                price=float(rng.uniform(10, 200)),
                volume=float(rng.uniform(0.1, 20)),
                labels=labels,
                regime=[None, "low", "medium", "high"][int(rng.integers(0, 4))],
                session=["regular", "pre_market", "after_hours", ""][int(rng.integers(0, 4))],
            )
        )
    return frame(*rows).sort_values("exit_time", kind="stable").reset_index(drop=True)


def row(table: pd.DataFrame, group: str) -> pd.Series:
    return table.set_index("group").loc[group]


# -- PnL attribution --------------------------------------------------------------------------


def test_pnl_attribution_by_symbol_worked_by_hand() -> None:
    trips = frame(
        trip(100.0, ret=0.10, symbol="BTC"),
        trip(-40.0, ret=-0.02, symbol="BTC"),
        trip(60.0, ret=0.03, symbol="ETH"),
        trip(0.0, ret=0.0, symbol="ETH"),  # break-even: not a win
    )
    table = pnl_attribution(trips, "symbol")
    assert table["group"].tolist() == ["BTC", "ETH", ALL]
    assert table["trades"].tolist() == [2, 2, 4]
    assert table["wins"].tolist() == [1, 1, 2]
    assert table["win_rate"].tolist() == [0.5, 0.5, 0.5]
    assert table["net_pnl"].tolist() == [60.0, 60.0, 120.0]
    assert table["pnl_share"].tolist() == [0.5, 0.5, 1.0]
    assert table["avg_net_pnl"].tolist() == [30.0, 30.0, 30.0]
    assert table["avg_return"].tolist() == pytest.approx([0.04, 0.015, 0.0275], rel=1e-15)


def test_a_trip_with_several_labels_counts_in_each_and_once_in_all() -> None:
    trips = frame(
        trip(10.0, labels=("breakout", "momentum")),
        trip(-4.0, labels=("momentum",)),
        trip(6.0, labels=()),
        trip(2.0, labels=("momentum", "momentum")),  # a repeated label counts once
    )
    table = pnl_attribution(trips, "label")
    assert table["group"].tolist() == ["breakout", "momentum", NO_LABEL, ALL]
    assert table["trades"].tolist() == [1, 3, 1, 4]
    assert table["net_pnl"].tolist() == [10.0, 8.0, 6.0, 14.0]
    assert table["pnl_share"].tolist() == pytest.approx([10 / 14, 8 / 14, 6 / 14, 1.0])
    # the label rows overlap: their sums exceed the total, the all row does not double count
    assert table["trades"].iloc[:-1].sum() > table["trades"].iloc[-1]


def test_hour_and_weekday_of_the_entry_or_the_exit_in_utc() -> None:
    # entered Sunday 23:30 UTC (Monday 01:30 in Paris), closed Monday 00:30 UTC
    trips = frame(trip(5.0, entry="2024-01-07 23:30", exit="2024-01-08 00:30"))
    assert pnl_attribution(trips, "hour")["group"].tolist() == ["23", ALL]
    assert pnl_attribution(trips, "weekday")["group"].tolist() == ["Sun", ALL]
    assert pnl_attribution(trips, "hour", clock="exit")["group"].tolist() == ["00", ALL]
    assert pnl_attribution(trips, "weekday", clock="exit")["group"].tolist() == ["Mon", ALL]
    paris = trips.assign(entry_time=trips["entry_time"].dt.tz_convert("Europe/Paris"))
    naive = trips.assign(entry_time=trips["entry_time"].dt.tz_localize(None))
    for other in (paris, naive):  # other zones are converted, naive times read as UTC
        assert pnl_attribution(other, "hour")["group"].tolist() == ["23", ALL]


def test_groups_come_in_their_natural_order() -> None:
    days = ["2024-01-06", "2024-01-01", "2024-01-03", "2024-01-07"]  # Sat, Mon, Wed, Sun
    trips = frame(*(trip(1.0, entry=f"{d} 09:00", exit=f"{d} 10:00") for d in days))
    assert pnl_attribution(trips, "weekday")["group"].tolist() == [
        "Mon",
        "Wed",
        "Sat",
        "Sun",
        ALL,
    ]
    hours = frame(*(trip(1.0, entry=f"2024-01-01 {h:02d}:00") for h in (13, 2, 9)))
    assert pnl_attribution(hours, "hour")["group"].tolist() == ["02", "09", "13", ALL]
    regimes = frame(trip(1.0, regime="low"), trip(1.0, regime=None), trip(1.0, regime="high"))
    assert pnl_attribution(regimes, "regime")["group"].tolist() == ["high", "low", UNKNOWN, ALL]


def test_size_buckets_are_quantiles_of_entry_notional_closed_on_the_right() -> None:
    trips = frame(*(trip(float(i), price=100.0, volume=float(i)) for i in (1, 2, 3, 4, 5)))
    assert size_edges(trips, 4) == (200.0, 300.0, 400.0)  # notional 100..500: quartiles
    assert size_edges(trips) == (180.0, 260.0, 340.0, 420.0)  # default quintiles
    table = pnl_attribution(trips, "size", size_edges=size_edges(trips, 4))
    assert table["group"].tolist() == [
        "1: <= 200",
        "2: (200, 300]",
        "3: (300, 400]",
        "4: > 400",
        ALL,
    ]
    assert table["trades"].tolist() == [2, 1, 1, 1, 5]  # 200 sits on an edge: bucket 1
    assert table.attrs["size_edges"] == (200.0, 300.0, 400.0)
    same = frame(*(trip(1.0) for _ in range(4)))  # equal sizes: one edge, two buckets
    assert size_edges(same) == (100.0,)
    assert pnl_attribution(same, "size")["group"].tolist() == ["1: <= 100", ALL]


def test_missing_context_is_unknown_and_a_zero_total_has_no_share() -> None:
    trips = frame(trip(5.0, session=None), trip(-5.0, session=""), trip(0.0, session="regular"))
    table = pnl_attribution(trips, "session")
    assert table["group"].tolist() == ["regular", UNKNOWN, ALL]
    assert table["trades"].tolist() == [1, 2, 3]
    assert table["pnl_share"].isna().all()  # total net PnL is 0


def test_no_trips_give_the_all_row_alone() -> None:
    empty = frame(trip(1.0)).iloc[:0]
    table = pnl_attribution(empty, "label")
    assert table["group"].tolist() == [ALL]
    assert table["trades"].tolist() == [0]
    assert table[["win_rate", "avg_net_pnl", "avg_return", "pnl_share"]].isna().all(axis=None)


def test_errors_name_the_dimension_the_column_and_the_row() -> None:
    trips = frame(trip(1.0), trip(2.0))
    with pytest.raises(ValueError, match=r"by='lable'.*did you mean 'label'"):
        pnl_attribution(trips, "lable")
    with pytest.raises(ValueError, match=r"missing column\(s\) \['market_session'\]"):
        pnl_attribution(trips.drop(columns="market_session"), "session")
    with pytest.raises(ValueError, match=r"row 1: net_pnl=nan"):
        pnl_attribution(trips.assign(net_pnl=[1.0, np.nan]), "symbol")
    with pytest.raises(ValueError, match="clock='close'"):
        pnl_attribution(trips, "hour", clock="close")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="strictly increasing"):
        pnl_attribution(trips, "size", size_edges=(5.0, 1.0))


def test_frame_keys_equal_one_trip_keys_for_every_dimension() -> None:
    trips = frame(
        trip(1.0, labels=("a", "b"), regime=None, session=""),
        trip(2.0, labels=("b", "b"), entry="2024-01-06 23:59", price=250.0),
        trip(3.0, labels=(), regime="high", price=999.0, volume=3.0),
    )
    trips.loc[1, "labels"] = ["b", "c"]  # a list, as JSON gives it
    trips.loc[2, "labels"] = np.nan  # no labels at all
    edges = size_edges(trips, 3)
    for by in DIMENSIONS:
        for clock in ("entry", "exit"):
            rows, keys = group_keys(trips, by, edges=edges, clock=clock)
            one_by_one = [
                (i, key)
                for i, (_, record) in enumerate(trips.iterrows())
                for key in trip_keys(record, by, edges=edges, clock=clock)
            ]
            assert list(zip(rows.tolist(), keys.tolist(), strict=True)) == one_by_one, by


# -- risk attribution -------------------------------------------------------------------------


def test_risk_contributions_worked_by_hand() -> None:
    trips = frame(
        trip(10.0, symbol="A", exit="2024-01-01 12:00"),
        trip(2.0, symbol="B", exit="2024-01-01 13:00"),
        trip(-5.0, symbol="A", exit="2024-01-02 12:00"),
        trip(4.0, symbol="B", exit="2024-01-02 18:00"),
        trip(-6.0, symbol="B", exit="2024-01-04 09:00"),  # 2024-01-03: nothing closed
    )
    pnl = daily_pnl(trips)
    assert pnl.index.strftime("%Y-%m-%d").tolist() == [f"2024-01-0{d}" for d in (1, 2, 3, 4)]
    assert pnl.tolist() == [12.0, -1.0, 0.0, -6.0]
    a, b = np.array([10.0, -5.0, 0.0, 0.0]), np.array([2.0, 4.0, 0.0, -6.0])
    total = a + b
    table = risk_attribution(trips, "symbol")
    assert table["group"].tolist() == ["A", "B", ALL]
    expected = [np.cov(a, total)[0, 1], np.cov(b, total)[0, 1], np.var(total, ddof=1)]
    assert table["contribution"].tolist() == pytest.approx(expected, rel=1e-12)
    assert table["variance_share"].iloc[:-1].sum() == pytest.approx(1.0, rel=1e-12)
    assert table["std_daily_pnl"].tolist() == pytest.approx(
        [a.std(ddof=1), b.std(ddof=1), total.std(ddof=1)], rel=1e-12
    )
    assert table["correlation"].iloc[0] == pytest.approx(np.corrcoef(a, total)[0, 1], rel=1e-12)
    assert table["net_pnl"].tolist() == [5.0, 0.0, 5.0]
    assert table.attrs["ddof"] == 1
    assert table.attrs["days"] == 4
    population = risk_attribution(trips, "symbol", ddof=0)
    assert population["contribution"].iloc[-1] == pytest.approx(np.var(total), rel=1e-12)
    business = pd.bdate_range("2024-01-01", "2024-01-05", tz="UTC")  # the days given
    assert risk_attribution(trips, "symbol", days=business).attrs["days"] == 5


def test_risk_by_label_splits_a_trip_among_its_labels() -> None:
    trips = frame(
        trip(10.0, labels=("a", "b"), exit="2024-01-01 12:00"),
        trip(4.0, labels=("a",), exit="2024-01-02 12:00"),
        trip(-2.0, labels=(), exit="2024-01-02 13:00"),
    )
    table = risk_attribution(trips, "label")
    per_label = {"a": [5.0, 4.0], "b": [5.0, 0.0], NO_LABEL: [0.0, -2.0]}
    total = np.array([10.0, 2.0])
    assert table["group"].tolist() == ["a", "b", NO_LABEL, ALL]
    expected = [np.cov(per_label[g], total)[0, 1] for g in ("a", "b", NO_LABEL)]
    assert table["contribution"].iloc[:-1].tolist() == pytest.approx(expected, rel=1e-12)
    assert table["net_pnl"].tolist() == [9.0, 5.0, -2.0, 12.0]


@pytest.mark.parametrize("by", DIMENSIONS)
def test_risk_contributions_sum_to_the_variance_of_daily_pnl(by: str) -> None:
    trips = random_trips(400)
    table = risk_attribution(trips, by)
    variance = daily_pnl(trips).var(ddof=1)
    assert table["contribution"].iloc[-1] == pytest.approx(variance, rel=1e-12)
    total = table["contribution"].iloc[:-1].sum()
    assert abs(total - variance) <= 1e-9 * abs(variance)
    assert abs(table["variance_share"].iloc[:-1].sum() - 1.0) <= 1e-9


def test_risk_refuses_a_trip_outside_the_days_and_gives_nan_without_enough_days() -> None:
    trips = frame(trip(1.0, exit="2024-01-06 12:00"))  # a Saturday
    with pytest.raises(ValueError, match=r"row 0: exit_time on 2024-01-06, a day not in"):
        risk_attribution(trips, "symbol", days=pd.bdate_range("2024-01-01", "2024-01-12"))
    one_day = risk_attribution(trips, "symbol")
    assert one_day[["contribution", "variance_share", "correlation"]].isna().all(axis=None)


# -- alpha and beta ---------------------------------------------------------------------------


def test_alpha_beta_worked_by_hand() -> None:
    b = np.array([0.005, 0.01, -0.005, 0.002])
    result = alpha_beta(2 * b + 0.001, b)
    assert result["convention"] == "empyrical"
    assert result["beta"] == pytest.approx(2.0, rel=1e-12)
    assert result["alpha"] == pytest.approx(1.001**252 - 1, rel=1e-9)
    assert result["observations"] == 4
    crypto = alpha_beta(2 * b + 0.001, b, periods_per_year=365)
    assert crypto["alpha"] == pytest.approx(1.001**365 - 1, rel=1e-9)
    assert math.isnan(alpha_beta([0.01], [0.02])["alpha"])  # under two periods
    assert math.isnan(alpha_beta([0.01, 0.02], [0.01, 0.01])["beta"])  # flat benchmark
    with pytest.raises(ValueError, match=r"returns \(2,\) and benchmark_returns \(3,\)"):
        alpha_beta([0.1, 0.2], [0.1, 0.2, 0.3])


def _empyrical_alpha_beta(returns, benchmark, annual_rf: float, periods: int) -> np.ndarray:
    import empyrical  # test-only reference (requirements-dev.txt)

    rf = (1 + annual_rf) ** (1 / periods) - 1
    return empyrical.alpha_beta(returns, benchmark, risk_free=rf, annualization=periods)


@pytest.mark.parametrize(("annual_rf", "periods"), [(0.0, 252), (0.03, 252), (0.02, 365)])
def test_alpha_beta_equals_empyrical_on_sp500_and_nasdaq(annual_rf: float, periods: int) -> None:
    sp500 = benchmark_returns(load_sample("SP500"))
    nasdaq = benchmark_returns(load_sample("NASDAQ"))
    ours = alpha_beta(nasdaq, sp500, periods_per_year=periods, risk_free=annual_rf)
    alpha, beta = _empyrical_alpha_beta(nasdaq, sp500, annual_rf, periods)
    assert ours["observations"] == 5030
    assert abs(ours["beta"] - beta) <= EMPYRICAL_TOL
    assert abs(ours["alpha"] - alpha) <= EMPYRICAL_TOL
    assert 1.0 < ours["beta"] < 1.5  # the NASDAQ moves more than the S&P 500


# empyrical aligns two Series with a pd.concat that pandas 3 warns about (its code, not ours)
@pytest.mark.filterwarnings(
    "ignore:Sorting by default when concatenating all DatetimeIndex:pandas.errors.Pandas4Warning"
)
@pytest.mark.parametrize("seed", range(5))
def test_alpha_beta_equals_empyrical_on_random_misaligned_data(seed: int) -> None:
    rng = np.random.default_rng(seed)
    days = pd.date_range("2020-01-01", periods=700, freq="D", tz="UTC")
    bench = pd.Series(rng.normal(0.0004, 0.012, 700), index=days)
    strat = 0.0002 + rng.uniform(-0.5, 1.5) * bench + rng.normal(0, 0.01, 700)
    strat = strat.iloc[30:].copy()  # starts later
    bench = bench.iloc[:-20].copy()  # ends earlier
    strat.iloc[rng.choice(len(strat), 25, replace=False)] = np.nan
    bench.iloc[rng.choice(len(bench), 25, replace=False)] = np.nan
    ours = alpha_beta(strat, bench, risk_free=0.04)
    alpha, beta = _empyrical_alpha_beta(strat, bench, 0.04, 252)
    assert abs(ours["beta"] - beta) <= EMPYRICAL_TOL
    assert abs(ours["alpha"] - alpha) <= EMPYRICAL_TOL


def test_daily_returns_on_start_of_day_equity() -> None:
    pnl = pd.Series([100.0, -55.0, 0.0, 20.9])
    assert daily_returns(pnl, 1000.0).tolist() == pytest.approx([0.1, -0.05, 0.0, 0.02])
    with pytest.raises(ValueError, match="starting_equity=0"):
        daily_returns(pnl, 0)


# -- factors ----------------------------------------------------------------------------------


def test_factor_regression_equals_lstsq_and_the_textbook_formulas() -> None:
    rng = np.random.default_rng(3)
    days = pd.date_range("2021-01-01", periods=250, freq="D", tz="UTC")
    factors = pd.DataFrame(rng.normal(0, 0.01, (250, 3)), index=days, columns=["m", "v", "p"])
    factors["v"] += 0.5 * factors["m"]  # correlated factors
    y = 0.0005 + factors @ np.array([0.8, -0.3, 0.2]) + rng.normal(0, 0.005, 250)
    table = factor_regression(y, factors)
    x = np.column_stack([np.ones(250), factors.to_numpy()])
    coef, *_ = np.linalg.lstsq(x, y.to_numpy(), rcond=None)
    assert table.index.tolist() == ["intercept", "m", "v", "p"]
    np.testing.assert_allclose(table["coef"], coef, rtol=1e-10)
    residual = y.to_numpy() - x @ coef
    s2 = residual @ residual / (250 - 4)
    for name in ("m", "v", "p"):  # se^2 = s^2 / (SST_j (1 - R_j^2)), R_j^2 on the others
        xj = factors[name].to_numpy()
        others = np.column_stack([np.ones(250), factors.drop(columns=name).to_numpy()])
        fitted = others @ np.linalg.lstsq(others, xj, rcond=None)[0]
        sst = ((xj - xj.mean()) ** 2).sum()
        r2_j = 1 - ((xj - fitted) ** 2).sum() / sst
        se = math.sqrt(s2 / (sst * (1 - r2_j)))
        assert table.loc[name, "std_err"] == pytest.approx(se, rel=1e-10)
        assert table.loc[name, "t_stat"] == pytest.approx(table.loc[name, "coef"] / se, rel=1e-10)
    r2 = 1 - residual @ residual / ((y - y.mean()) ** 2).sum()
    assert table["r_squared"].tolist() == pytest.approx([r2] * 4, rel=1e-12)
    assert table["adj_r_squared"].iloc[0] == pytest.approx(1 - (1 - r2) * 249 / 246, rel=1e-12)
    assert table["n"].tolist() == [250] * 4


def test_factor_regression_on_one_factor_equals_scipy_linregress() -> None:
    from scipy import stats  # installed with empyrical-reloaded; a test reference only

    nasdaq = benchmark_returns(load_sample("NASDAQ"))
    sp500 = benchmark_returns(load_sample("SP500"))
    table = factor_regression(nasdaq, sp500.to_frame("market"))
    fit = stats.linregress(sp500.to_numpy(), nasdaq.to_numpy())
    assert table.loc["market", "coef"] == pytest.approx(fit.slope, rel=1e-10)
    assert table.loc["intercept", "coef"] == pytest.approx(fit.intercept, rel=1e-8)
    assert table.loc["market", "std_err"] == pytest.approx(fit.stderr, rel=1e-10)
    assert table.loc["intercept", "std_err"] == pytest.approx(fit.intercept_stderr, rel=1e-10)
    assert table.loc["market", "r_squared"] == pytest.approx(fit.rvalue**2, rel=1e-10)
    # the slope equals empyrical's beta: one regression, two names
    assert table.loc["market", "coef"] == pytest.approx(alpha_beta(nasdaq, sp500)["beta"])


def test_factor_regression_undefined_or_refused() -> None:
    days = pd.date_range("2024-01-01", periods=3, freq="D", tz="UTC")
    y = pd.Series([0.01, 0.02, 0.0], index=days)
    few = factor_regression(y, pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [0.0, 1.0, 0.0]}, days))
    assert few[["coef", "std_err", "t_stat"]].isna().all(axis=None)  # n = 3 = k
    flat = pd.DataFrame({"a": [1.0, 1.0, 1.0]}, index=days)
    with pytest.raises(ValueError, match="factor 'a' is constant over the 3 days"):
        factor_regression(y, flat)
    days = pd.date_range("2024-01-01", periods=5, freq="D", tz="UTC")
    y = pd.Series([0.01, 0.02, 0.0, -0.01, 0.03], index=days)
    twins = pd.DataFrame({"a": [1.0, 2.0, 4.0, 3.0, 0.0]}, index=days).assign(b=lambda f: 2 * f.a)
    with pytest.raises(ValueError, match=r"factors \['a', 'b'\] are collinear over the 5 days"):
        factor_regression(y, twins)


def test_market_factors_worked_by_hand() -> None:
    closes = [100.0, 110.0, 99.0, 120.0, 90.0, 95.0]
    days = pd.date_range("2024-01-01", periods=6, freq="D", tz="UTC")
    candles = pd.DataFrame({"close": closes}, index=days)
    table = market_factors(candles, volatility_window=2, momentum_window=2, periods_per_year=365)
    c = pd.Series(closes, index=days)
    r = c.pct_change()
    assert table["market"].iloc[1:].tolist() == pytest.approx(r.iloc[1:].tolist(), rel=1e-15)
    # day 5 (index 5): momentum from closes 2 and 4, volatility from returns up to day 4
    assert table["momentum"].iloc[5] == pytest.approx(90.0 / 99.0 - 1, rel=1e-14)
    vol = [np.std([r.iloc[s - 1], r.iloc[s]], ddof=1) * math.sqrt(365) for s in (3, 4)]
    assert table["volatility"].iloc[5] == pytest.approx(vol[1] - vol[0], rel=1e-12)
    assert table["volatility"].iloc[:4].isna().all()
    assert table["momentum"].iloc[:3].isna().all()


def test_market_factors_use_only_closes_before_each_day() -> None:
    candles = load_sample("SP500")
    full = market_factors(candles)
    rng = np.random.default_rng(0)
    for t in (100, 1500, len(full) - 1):
        changed = candles.copy()
        changed.iloc[t:, changed.columns.get_loc("close")] *= rng.uniform(0.5, 1.5, len(full) - t)
        other = market_factors(changed)
        pd.testing.assert_frame_equal(
            other[["volatility", "momentum"]].iloc[: t + 1],
            full[["volatility", "momentum"]].iloc[: t + 1],
            check_exact=True,
        )
        assert other["market"].iloc[t] != full["market"].iloc[t]  # the day's own return


def test_intraday_benchmark_gives_the_last_close_of_each_utc_day() -> None:
    hours = pd.date_range("2024-01-01", periods=72, freq="h", tz="UTC")
    candles = pd.DataFrame({"close": np.arange(72.0) + 100}, index=hours)
    assert daily_closes(candles).tolist() == [123.0, 147.0, 171.0]
    assert benchmark_returns(candles).tolist() == pytest.approx([147 / 123 - 1, 171 / 147 - 1])


def test_regression_of_a_strategy_on_market_factors_runs_end_to_end() -> None:
    sp500 = load_sample("SP500")
    nasdaq = benchmark_returns(load_sample("NASDAQ"))
    table = factor_regression(nasdaq, market_factors(sp500))
    assert table.index.tolist() == ["intercept", "market", "volatility", "momentum"]
    assert table.loc["market", "t_stat"] > 50  # the NASDAQ is mostly the market
    assert table["n"].iloc[0] == 5031 - 22  # warm-up: 20 returns + 2 for the change


# -- patterns ---------------------------------------------------------------------------------


def test_pattern_analysis_worked_by_hand() -> None:
    trips = frame(
        trip(10.0, labels=("b", "a")),
        trip(20.0, labels=("a", "b")),
        trip(-5.0, labels=("a", "b", "c")),
        trip(7.0, labels=("a",)),
        trip(-1.0, labels=()),
    )
    table = pattern_analysis(trips, min_count=2)
    keys = list(zip(table["kind"], table["labels"], strict=True))
    assert keys == [
        ("pair", "a + b"),
        ("pair", "a + c"),
        ("pair", "b + c"),
        ("set", "a + b"),
        ("set", "a"),
        ("set", NO_LABEL),
        ("set", "a + b + c"),
    ]
    pair = table.iloc[0]
    assert (pair["trades"], pair["wins"], pair["net_pnl"]) == (3, 2, 25.0)
    pnl = np.array([10.0, 20.0, -5.0])
    t = pnl.mean() / (pnl.std(ddof=1) / math.sqrt(3))
    assert pair["t_stat"] == pytest.approx(t, rel=1e-12)
    assert bool(pair["noise"])  # |t| = 1.15 < 2
    exact = table.iloc[3]  # the set {a, b}: +10, +20, t = 3
    assert exact["t_stat"] == pytest.approx(3.0, rel=1e-12)
    assert not exact["noise"]
    assert pattern_analysis(trips, min_count=3).iloc[3]["noise"]  # 2 trades < 3
    assert table["noise"].iloc[4:].all()  # single trades: no deviation, no t


# -- live state -------------------------------------------------------------------------------


def test_live_state_equals_a_recomputation_after_every_trip() -> None:
    trips = random_trips(120, seed=11)
    edges = size_edges(trips)
    state = AttributionState(size_edges=edges)
    records = trips.to_dict("records")
    for i in range(len(trips)):
        state.add(trips.iloc[i] if i % 2 else records[i])  # a frame row or a dict
        so_far = trips.iloc[: i + 1]
        for by in DIMENSIONS:
            pd.testing.assert_frame_equal(
                state.table(by), pnl_attribution(so_far, by, size_edges=edges), check_exact=True
            )
    assert state.trades == 120
    exit_clock = AttributionState(clock="exit")
    for record in records:
        exit_clock.add(record)
    pd.testing.assert_frame_equal(
        exit_clock.table("hour"), pnl_attribution(trips, "hour", clock="exit"), check_exact=True
    )


def test_live_state_without_size_edges_keeps_no_size_table() -> None:
    state = AttributionState()
    state.add({k: v for k, v in trip(3.0).items() if k not in ("labels", "market_session")})
    assert state.table("label")["group"].tolist() == [NO_LABEL, ALL]
    assert state.table("session")["group"].tolist() == [UNKNOWN, ALL]
    with pytest.raises(ValueError, match="keeps no size buckets"):
        state.table("size")
    with pytest.raises(ValueError, match="net_pnl=nan"):
        state.add(trip(float("nan")))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_expand_gives_the_codes_pd_factorize_gives_the_memberships_keys(seed: int) -> None:
    """groups.expand factorizes each distinct code's keys once: the memberships, their codes
    and the keys equal pd.factorize of every membership's key (first seen first), a missing
    key included (then as pd.factorize codes it: -1)."""
    rng = np.random.default_rng(seed)
    pool = ["a", "b", ("pair", "a|b"), "c", ("set", "c")]
    keys_per_code = [
        [pool[k] for k in rng.choice(len(pool), rng.integers(0, 4), replace=False)]
        for _ in range(6)
    ]
    if seed == 2:
        keys_per_code[1] = [*keys_per_code[1], None]
    codes = rng.integers(0, len(keys_per_code), 300)
    rows, key_codes, keys = expand(codes, keys_per_code)
    expected_rows = [i for i, c in enumerate(codes.tolist()) for _ in keys_per_code[c]]
    memberships = np.empty(len(expected_rows), dtype=object)
    memberships[:] = [k for c in codes.tolist() for k in keys_per_code[c]]
    expected_codes, expected_keys = pd.factorize(memberships)
    assert rows.tolist() == expected_rows
    assert key_codes.tolist() == expected_codes.tolist()
    assert keys.dtype == object
    assert keys.tolist() == list(expected_keys)
    assert expand(codes[:0], keys_per_code)[1].tolist() == []


def test_json_rows_equal_to_dict_records_made_plain() -> None:
    """services.live_accounts.json_rows lists a table column by column: the rows
    to_dict('records') gives, each value made plain (NaN and infinities None, numpy scalars
    Python's, tuples lists, times ISO texts), for the attribution tables and odd dtypes."""
    from services.live_accounts import _plain, json_rows

    trips = random_trips(80, seed=4)
    frames = [pnl_attribution(trips, by) for by in DIMENSIONS]
    frames += [risk_attribution(trips, "label"), pattern_analysis(trips, min_count=2), trips]
    frames.append(
        pd.DataFrame(
            {
                "b": [np.nan, np.inf],
                "c": pd.array(["x", None], dtype="str"),
                "e": [(1, 2), None],
                "t": pd.to_datetime(["2024-01-01", None], utc=True),
                "i": pd.array([1, None], dtype="Int64"),  # NA: to_dict's None
            }
        )
    )
    for frame in frames:
        expected = [{str(k): _plain(v) for k, v in r.items()} for r in frame.to_dict("records")]
        assert repr(json_rows(frame)) == repr(expected)
