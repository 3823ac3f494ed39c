"""An exchange feed's own states on the live status line (assets/chart_view.js, run in node):
the badge names the state and the line carries the feed's detail (what it backfills, why and
when it retries)."""

from __future__ import annotations

import pytest

from tests.dashboard.test_live_delayed import render_status


@pytest.mark.parametrize(
    ("status", "note", "badge"),
    [
        ("connecting", "connecting to binance", ("CONNECTING", "secondary")),
        ("backfilling", "backfilling 48 bars from binance", ("BACKFILLING", "info")),
        (
            "retrying",
            "fetching candles: attempt 2 failed, next in 3.1 s: ExchangeNotAvailable: binance 502",
            ("RETRYING", "warning"),
        ),
    ],
)
def test_the_status_line_shows_the_exchange_feed_state(status, note, badge):
    state = {"s": "BTC/USDT", "tf": "1m", "st": status, "fk": "ccxt binance", "err": note}
    state |= {"last": 1_709_251_140_000, "v": 3}
    text, _, label, color = render_status(state)
    assert (label, color) == badge
    assert text.startswith("BTC/USDT 1m · ccxt binance feed · last closed bar 2024-02-29 23:59 UTC")
    assert text.endswith(" · " + note)
