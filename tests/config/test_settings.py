from pathlib import Path

import pytest

from config.settings import FeedSpec, Settings, SettingsError


def test_defaults_need_no_configuration():
    settings = Settings.from_env({})
    assert settings.database_url.startswith("sqlite:///")
    assert settings.database_url.endswith("data/stratlens.db")
    assert settings.redis_url is None
    assert (settings.host, settings.port) == ("127.0.0.1", 8050)
    assert FeedSpec("SP500", "replay") in settings.feeds
    assert FeedSpec("DEMO", "random_walk") in settings.feeds


def test_values_are_read_from_the_environment(tmp_path: Path):
    settings = Settings.from_env(
        {
            "DATABASE_URL": "postgresql://me@db:5432/prod",
            "REDIS_URL": "redis://127.0.0.1:6379/2",
            "PORT": "9000",
            "FEEDS": "AAPL:replay",
            "FEED_SPEED": "2.5",
            "LOG_LEVEL": "debug",
            "STRATLENS_DATA_DIR": str(tmp_path),
        }
    )
    # a bare postgresql:// means psycopg 3 to SQLAlchemy 2.1; we ship psycopg2
    assert settings.database_url == "postgresql+psycopg2://me@db:5432/prod"
    assert settings.redis_url == "redis://127.0.0.1:6379/2"
    assert settings.port == 9000
    assert settings.feeds == (FeedSpec("AAPL", "replay"),)
    assert settings.feed_speed == 2.5
    assert settings.log_level == "DEBUG"
    assert settings.data_dir == tmp_path


def test_feeds_none_disables_live_feeds():
    assert Settings.from_env({"FEEDS": "none"}).feeds == ()


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("PORT", "eighty", "an integer from 1 to 65535"),
        ("PORT", "70000", "an integer from 1 to 65535"),
        ("FEED_SPEED", "fast", "a number from 0.01 to 1000"),
        ("FEED_SPEED", "nan", "a number from 0.01 to 1000"),
        ("FEED_SPEED", "0", "a number from 0.01 to 1000"),
        ("FEEDS", "SP500:teleport", "SYMBOL:KIND"),
        ("FEEDS", "SP500", "SYMBOL:KIND"),
        ("FEEDS", "SP500:replay,SP500:random_walk", "each symbol once"),
        ("DATABASE_URL", "mysql://root@localhost/x", "sqlite:///PATH or postgresql+psycopg2"),
        ("REDIS_URL", "http://cache", "redis://HOST:PORT/DB"),
        ("LOG_LEVEL", "chatty", "one of DEBUG, INFO"),
        ("REFRESH_MS", "10", "an integer from 100"),
        ("LOAD_SAMPLE_DATA", "maybe", "true or false"),
    ],
)
def test_an_invalid_value_names_the_variable_the_value_and_the_expectation(
    variable, value, expected
):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({variable: value})
    message = str(caught.value)
    assert caught.value.variable == variable
    assert message.startswith(f"{variable}={value!r} is invalid: expected ")
    assert expected in message


def test_an_exchange_feed_names_symbol_exchange_and_timeframe():
    feeds = Settings.from_env(
        {"FEEDS": "BTC/USDT:ccxt:binance:1m, SP500:replay, BTC/USDT:USDT:ccxt:bybit:5m"}
    ).feeds
    assert feeds == (
        FeedSpec("BTC/USDT", "ccxt", exchange="binance", timeframe="1m"),
        FeedSpec("SP500", "replay"),
        # a ccxt perpetual swap symbol holds a colon: the kind is found from the right
        FeedSpec("BTC/USDT:USDT", "ccxt", exchange="bybit", timeframe="5m"),
    )
    assert [str(f) for f in feeds] == [
        "BTC/USDT:ccxt:binance:1m",
        "SP500:replay",
        "BTC/USDT:USDT:ccxt:bybit:5m",
    ]


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("BTC/USDT:ccxt", "in 'BTC/USDT:ccxt' the exchange or the timeframe is missing"),
        ("BTC/USDT:ccxt:binance", "the exchange or the timeframe is missing"),
        ("BTC/USDT:ccxt::1m", "the exchange or the timeframe is missing"),
        (":ccxt:binance:1m", "the symbol is missing"),
        ("BTC/USDT:ccxt:binance:2m", "timeframe '2m' is not one of 1m, 5m, 15m"),
        ("BTC/USDT:ccxt:Binance:1m", "'Binance' is not a ccxt exchange id"),
        ("BTC/USDT:ccxt:binance:1m:spot", "'spot' follows the timeframe"),
    ],
)
def test_a_malformed_exchange_feed_says_what_is_wrong(value, problem):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"FEEDS": f"SP500:replay,{value}"})
    message = str(caught.value)
    assert caught.value.variable == "FEEDS"
    assert "expected SYMBOL:ccxt:EXCHANGE:TIMEFRAME (like BTC/USDT:ccxt:binance:1m)" in message
    assert problem in message


def test_an_exchange_feed_symbol_counts_once_with_the_others():
    with pytest.raises(SettingsError, match=r"each symbol once \(BTC/USDT repeats\)"):
        Settings.from_env({"FEEDS": "BTC/USDT:replay,BTC/USDT:ccxt:binance:1m"})
