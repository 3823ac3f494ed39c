"""The live page's control texts: indicator labels in declared order, the LOD note."""

from __future__ import annotations

from dashboard.pages.live.controls import indicator_choices, indicator_label, lod_note

EMA = "ema_crossover(direction=both,fast=12,slow=26)"


def test_indicator_labels_follow_the_declared_parameter_order():
    labels = {o["value"]: o["label"] for o in indicator_choices()}
    assert labels["macd(fast=12,signal=9,slow=26)"] == "MACD 12,26,9"  # fast, slow, signal
    assert labels["bbands(nbdevdn=2.0,nbdevup=2.0,timeperiod=20)"] == "BB 20,2"
    assert indicator_label("bbands(nbdevdn=1.5,nbdevup=2.5,timeperiod=10)") == "BB 10,2.5,1.5"
    assert indicator_label("nope(x=1)") == "nope(x=1)"  # not an indicator: shown as written


def test_lod_note_names_what_the_whole_history_view_leaves_out():
    assert lod_note(False, ["rsi(timeperiod=14)"], [EMA]) == ""
    assert lod_note(True, [], []) == ""
    assert lod_note(True, ["rsi(timeperiod=14)"], [EMA]) == (
        "Whole history (LOD): candles only; 1 strategy (its markers and trades) and 1 indicator"
        " not drawn"
    )
    assert (
        lod_note(True, ["a", "b"], None)
        == "Whole history (LOD): candles only; 2 indicators not drawn"
    )
    assert lod_note(True, None, [EMA, EMA]) == (
        "Whole history (LOD): candles only; 2 strategies (their markers and trades) not drawn"
    )
