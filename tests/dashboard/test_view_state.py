"""The live page's view round-trips through the URL; bad parts are reported, not fatal."""

from __future__ import annotations

import pytest

from dashboard.pages.live.view_state import SpecError, ViewState, indicator_request, parse_spec
from services.chart_layers import strategy_key
from strategies.registry import create
from strategies.signals import SIGNAL_TYPES


def test_round_trip_keeps_every_field():
    view = ViewState(
        symbol="NASDAQ",
        timeframe="1w",
        indicators=("ema(timeperiod=50)", "macd(fast=12,signal=9,slow=26)"),
        strategies=(
            "ema_crossover(direction=both,fast=9,slow=21)",
            strategy_key(create("rsi_reversion", period=10)),
        ),
        signal_types=("entry_long", "exit_long"),
        min_confidence=0.35,
        show_forming=False,
        theme="light",
        lod=True,
    )
    again, problems = ViewState.from_query(view.to_query())
    assert problems == []
    assert again == view


def test_short_specs_become_canonical_with_defaults():
    view, problems = ViewState.from_query(
        "?symbol=SP500&tf=1d&ind=rsi&ind=ema(timeperiod=20)&ind=rsi(timeperiod=14)"
        "&strat=sma_crossover(fast=5)"
    )
    assert problems == []
    assert view.indicators == ("rsi(timeperiod=14)", "ema(timeperiod=20)")  # duplicate dropped
    (spec,) = view.strategies
    assert spec == strategy_key(create("sma_crossover", fast=5))
    assert view.signal_types == SIGNAL_TYPES
    assert view.min_confidence == 0.0
    assert view.show_forming is True
    assert view.to_query().count("ind=") == 2


def test_bad_parts_are_reported_and_the_rest_kept():
    view, problems = ViewState.from_query(
        "?symbol=SP500&ind=rsj&ind=rsi(timeperiod=1)&ind=ema(timeperiod=9)"
        "&strat=nope&types=entry_long,buy&conf=2&theme=blue&forming=maybe"
    )
    assert view.indicators == ("ema(timeperiod=9)",)
    assert view.strategies == ()
    assert view.signal_types == ("entry_long",)
    assert (view.min_confidence, view.theme, view.show_forming) == (0.0, "dark", True)
    text = "\n".join(problems)
    assert "did you mean 'rsi'" in text
    assert "timeperiod=1 is out of range" in text
    assert "strategy 'nope' ignored" in text
    assert "['buy']" in text
    assert "conf='2'" in text
    assert "theme='blue'" in text
    assert "forming='maybe'" in text
    assert len(problems) == 7


def test_types_with_no_valid_value_fall_back_to_every_type():
    view, problems = ViewState.from_query("?symbol=SP500&types=bogus")
    assert view.signal_types == SIGNAL_TYPES
    (problem,) = problems
    assert "['bogus'] ignored" in problem
    assert "showing every type" in problem
    view, problems = ViewState.from_query("?types=bogus,exit_short")
    assert view.signal_types == ("exit_short",)
    assert "showing every type" not in problems[0]


def test_parse_spec():
    assert parse_spec("ema(timeperiod=20)") == ("ema", {"timeperiod": 20})
    assert parse_spec(" bbands ( nbdevup=2.5 , timeperiod=10 ) ") == (
        "bbands",
        {"nbdevup": 2.5, "timeperiod": 10},
    )
    assert parse_spec("rsi") == ("rsi", {})
    with pytest.raises(SpecError, match="is not name"):
        parse_spec("ema(timeperiod=20")
    with pytest.raises(SpecError, match="'20' is not param=value"):
        parse_spec("ema(20)")
    assert indicator_request("macd(fast=8)").key == "macd(fast=8,signal=9,slow=26)"


def test_empty_query_is_the_default_view():
    view, problems = ViewState.from_query("")
    assert view == ViewState()
    assert problems == []
    assert ViewState().to_query() == ""
