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
