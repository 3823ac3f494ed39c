"""Round trips from fills, FIFO: cases worked by hand (the expected numbers are written out,
not computed by the code under test), and the paper broker's fills of a replay, whose round
trips must be the backtest engine's trades."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics.round_trips import fill_pnl, round_trips

T0 = pd.Timestamp("2024-01-02 10:00", tz="UTC")


def fills(*rows: tuple) -> pd.DataFrame:
    """rows: (minute, side, price, volume, commission[, symbol[, account]])"""
    out = []
    for k, row in enumerate(rows):
        minute, side, price, volume, fee, *rest = row
        symbol = rest[0] if rest else "BTC"
        account = rest[1] if len(rest) > 1 else "acc"
        out.append(
            {
                "trade_id": f"t{k}",
                "account_id": account,
                "strategy_id": "s",
                "symbol": symbol,
                "side": side,
                "price": float(price),
                "volume": float(volume),
                "commission": float(fee),
                "time": T0 + pd.Timedelta(minutes=minute),
            }
        )
    return pd.DataFrame(out)


def test_a_long_scaled_in_and_out_is_one_trip_fifo():
    # buy 1 @100 (fee 1), buy 1 @110 (fee 1), sell 1.5 @120 (fee 1.5), sell 0.5 @90 (fee 0.5)
    f = fills((0, "buy", 100, 1, 1), (1, "buy", 110, 1, 1), (2, "sell", 120, 1.5, 1.5),
              (3, "sell", 90, 0.5, 0.5))  # fmt: skip
    trips = round_trips(f)
    assert len(trips) == 1
    t = trips.iloc[0]
    # FIFO: 1 @100 -> 120 (+20), 0.5 @110 -> 120 (+5), 0.5 @110 -> 90 (-10): gross 15
    assert t.direction == "long"
    assert t.gross_pnl == pytest.approx(15.0, abs=1e-12)
    assert t.fees == pytest.approx(4.0, abs=1e-12)
    assert t.net_pnl == pytest.approx(11.0, abs=1e-12)
    assert t.entry_price == pytest.approx(105.0)
    assert t.exit_price == pytest.approx(112.5)
    assert t.volume == 2.0
    assert t["return"] == pytest.approx(11.0 / 210.0)
    assert t.entry_trade_ids == ("t0", "t1")
    assert t.exit_trade_ids == ("t2", "t3")
    assert t.holding_s == 180.0
    # per fill: entries realise -fee; the exits 25 - 1.5 and -10 - 0.5
    pnl = fill_pnl(f)
    np.testing.assert_allclose(pnl["pnl"], [-1.0, -1.0, 23.5, -10.5], atol=1e-12)
    np.testing.assert_allclose(pnl["cumulative_pnl"], [-1.0, -2.0, 21.5, 11.0], atol=1e-12)


def test_a_flip_closes_the_long_and_opens_a_short_sharing_the_fee():
    # buy 2 @50 (fee 2), sell 3 @60 (fee 3: 2 close, 1 open), buy 1 @55 (fee 1)
    f = fills((0, "buy", 50, 2, 2), (5, "sell", 60, 3, 3), (9, "buy", 55, 1, 1))
    trips = round_trips(f)
    assert list(trips.direction) == ["long", "short"]
    long, short = trips.iloc[0], trips.iloc[1]
    assert long.gross_pnl == pytest.approx(20.0)
    assert long.fees == pytest.approx(4.0)
    assert long.exit_trade_ids == ("t1",)
    assert short.entry_trade_ids == ("t1",)
    assert short.entry_time == T0 + pd.Timedelta(minutes=5)
    assert short.gross_pnl == pytest.approx(5.0)
    assert short.fees == pytest.approx(2.0)
    assert short.net_pnl == pytest.approx(3.0)
    assert short.volume == 1.0
    np.testing.assert_allclose(fill_pnl(f)["pnl"], [-2.0, 17.0, 4.0], atol=1e-12)


def test_fractional_partial_fills_accounts_and_symbols_are_kept_apart():
    f = fills(
        (0, "sell", 2000.0, 0.3, 0.0, "ETH"),  # a short on ETH
        (1, "buy", 100.0, 0.125, 0.0, "BTC", "other"),
        (2, "buy", 1900.0, 0.1, 0.0, "ETH"),
        (3, "sell", 120.0, 0.125, 0.0, "BTC", "other"),
        (4, "buy", 1950.0, 0.2, 0.0, "ETH"),
    )
    trips = round_trips(f).set_index(["account_id", "symbol"])
    assert trips.loc[("acc", "ETH"), "gross_pnl"] == pytest.approx(0.1 * 100 + 0.2 * 50)
    assert trips.loc[("other", "BTC"), "gross_pnl"] == pytest.approx(2.5)
    cumulative = fill_pnl(f)["cumulative_pnl"]
    assert cumulative.iloc[-1] == pytest.approx(20.0)  # acc's, not other's
    assert cumulative.iloc[3] == pytest.approx(2.5)


def test_an_open_position_is_not_a_trip_and_its_fee_is_already_paid():
    f = fills((0, "buy", 10, 5, 0.5), (1, "sell", 12, 2, 0.2))
    assert round_trips(f).empty
    np.testing.assert_allclose(fill_pnl(f)["pnl"], [-0.5, 4.0 - 0.2])


def test_mae_and_mfe_come_from_the_bars_the_trip_spans():
    bars = pd.DataFrame(
        {"open": [100, 100, 100, 100], "high": [101, 108, 103, 130],
         "low": [99, 95, 97, 60], "close": [100, 100, 100, 100], "volume": 1.0},
        index=pd.date_range(T0, periods=4, freq="1min"),
    )  # fmt: skip
    f = fills((0, "buy", 100, 1, 0), (2, "sell", 100, 1, 0))
    t = round_trips(f, {"BTC": bars}).iloc[0]
    assert t.mae == pytest.approx(-0.05)
    assert t.mfe == pytest.approx(0.08)
    short = fills((0, "sell", 100, 1, 0), (2, "buy", 100, 1, 0))
    t = round_trips(short, {"BTC": bars}).iloc[0]
    assert t.mae == pytest.approx(-0.08)
    assert t.mfe == pytest.approx(0.05)


@pytest.mark.parametrize(
    ("column", "value", "words"),
    [("side", "hold", "side='hold'"), ("price", -1.0, "price=-1.0"), ("volume", np.nan, "volume")],
)
def test_a_bad_fill_is_named(column, value, words):
    f = fills((0, "buy", 10, 1, 0), (1, "sell", 11, 1, 0))
    f.loc[1, column] = value
    with pytest.raises(ValueError, match=f"row 1.*{words}"):
        round_trips(f)


@pytest.mark.parametrize(
    ("name", "direction", "values"),
    [
        ("sma_crossover", "both", {"commission_pct": 0.001, "commission_fixed": 1.0,
                                   "slippage_bps": 2.0, "spread_bps": 3.0}),
        ("rsi_reversion", "long", {"commission_pct": 0.001, "sizing": "fraction", "size": 0.5,
                                   "stop_loss_pct": 0.03, "take_profit_pct": 0.06}),
        ("bollinger_reversion", "short", {"sizing": "quantity", "size": 2.0,
                                          "trailing_stop_pct": 0.04}),
    ],
)  # fmt: skip
def test_the_paper_brokers_fills_make_the_backtest_engines_trades(name, direction, values):
    """An outside reference: the backtest engine's trade list. The live path's fills, rebuilt
    into round trips here, give its trades: times, sizes, prices and net PnL."""
    from analytics.backtest import run_backtest
    from market.sample_data import load_sample
    from strategies.registry import create
    from trading.config import DeploymentSettings
    from trading.replay import replay

    candles = load_sample("SP500").iloc[-2500:]
    settings = DeploymentSettings.parse(values)
    strategy = create(name, direction=direction)
    expected = run_backtest(
        candles, strategy.generate(candles), settings.backtest(10_000.0, direction)
    ).trades
    made = []

    def sink(outcome) -> None:
        made.extend(f for fs in outcome.fills.values() for f in fs)

    replay(
        candles, create(name, direction=direction), settings, 10_000.0, symbol="SP500", sink=sink
    )
    f = pd.DataFrame(
        {
            "trade_id": [e.fill_id for e in made],
            "account_id": "replay",
            "strategy_id": name,
            "symbol": [e.symbol for e in made],
            "side": [e.side for e in made],
            "price": [e.price for e in made],
            "volume": [e.quantity for e in made],
            "commission": [e.fee for e in made],
            "time": pd.to_datetime([e.time for e in made], utc=True),
        }
    )
    trips = round_trips(f, {"SP500": candles})
    assert len(expected) >= 5
    assert len(trips) == len(expected)
    np.testing.assert_array_equal(trips["entry_time"].to_numpy(), expected["entry_time"].to_numpy())
    np.testing.assert_array_equal(trips["exit_time"].to_numpy(), expected["exit_time"].to_numpy())
    assert list(trips["direction"]) == list(expected["side"].astype(str))
    pairs = {"volume": expected["size"].abs(), "entry_price": expected["entry_price"],
             "exit_price": expected["exit_price"], "net_pnl": expected["pnl"]}  # fmt: skip
    if not (values.get("slippage_bps") or values.get("spread_bps")):
        # the engine's excursions end at the exit's market price; a fill's price carries the
        # slippage and spread, so they agree where fills have no price costs
        pairs |= {"mae": expected["mae"], "mfe": expected["mfe"]}
    for ours, theirs in pairs.items():
        np.testing.assert_allclose(trips[ours], theirs, rtol=1e-9, atol=1e-9, err_msg=ours)
    assert fill_pnl(f)["cumulative_pnl"].iloc[-1] == pytest.approx(expected["pnl"].sum(), rel=1e-9)


def test_the_compiled_walk_equals_the_ledger_fill_by_fill():
    """round_trips/fill_pnl run analytics._fifo (compiled); the live tracker runs
    PositionLedger one fill at a time: the same numbers, bit for bit, on random streams with
    fractional volumes, flips, several accounts and symbols."""
    from analytics.round_trips import _walk, check_fills

    rng = np.random.default_rng(11)
    rows, position = [], {}
    for k in range(3000):
        account, symbol = f"a{rng.integers(3)}", f"S{rng.integers(4)}"
        held = position.get((account, symbol), 0.0)
        side = "buy" if rng.random() < 0.5 - 0.2 * np.sign(held) else "sell"
        volume = float(np.round(rng.uniform(0.01, 3.0), 3))
        position[(account, symbol)] = held + (volume if side == "buy" else -volume)
        rows.append((k, side, float(rng.uniform(50, 150)), volume, float(rng.uniform(0, 0.5)),
                     symbol, account))  # fmt: skip
    f = fills(*rows)
    pnl, expected = _walk(check_fills(f))
    np.testing.assert_array_equal(fill_pnl(f)["pnl"].to_numpy(), pnl)
    trips = round_trips(f)
    assert len(trips) == len(expected) > 300
    for column in ("account_id", "symbol", "direction", "entry_trade_ids", "exit_trade_ids"):
        assert trips[column].tolist() == [t[column] for t in expected], column
    for column in ("entry_price", "exit_price", "volume", "gross_pnl", "fees", "net_pnl",
                   "return", "holding_s"):  # fmt: skip
        np.testing.assert_array_equal(
            trips[column].to_numpy(), np.array([t[column] for t in expected]), column
        )


@pytest.mark.parametrize(
    "values",
    [
        pd.array(["x", None, "y", "x"], dtype="str"),  # texts with a missing one
        pd.array([None, None, None, None], dtype="str"),  # no text at all
        pd.array(["x", None, "y", "x"], dtype="string"),  # another text dtype
        np.array(["x", np.nan, 3, None], dtype=object),  # Python objects
    ],
)
def test_the_trips_text_columns_are_those_a_frame_of_their_values_has(values):
    """A trip's symbol, strategy and carried columns are its entry fill's values: the same
    values and dtype as a frame built from those values as Python objects (a text column's
    values are taken as they are, not converted to objects and back)."""
    f = fills((0, "buy", 100, 1, 0), (1, "sell", 101, 1, 0), (2, "sell", 102, 2, 0),
              (3, "buy", 99, 2, 0))  # fmt: skip
    f["context"] = values
    trips = round_trips(f, carry=("context",))
    entry = dict(zip(f["trade_id"], f["context"].to_numpy(dtype=object), strict=True))
    expected = pd.DataFrame(
        {"context": np.array([entry[ids[0]] for ids in trips["entry_trade_ids"]], dtype=object)}
    )["context"]
    pd.testing.assert_series_equal(trips["context"], expected, check_exact=True)
    assert trips["symbol"].dtype == pd.DataFrame({"s": np.array(["BTC"], dtype=object)})["s"].dtype
    assert trips["direction"].tolist() == ["long", "short"]
