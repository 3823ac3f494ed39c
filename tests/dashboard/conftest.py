"""Browser fixtures: dash_duo drives a real headless Chromium (Debian's chromium + chromedriver)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from config.settings import Settings
from dashboard.server import create_app
from scripts.headless import HEADLESS_CHROME_ARGS

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


def pytest_setup_options():
    from selenium.webdriver.chrome.options import Options

    options = Options()
    for argument in (*HEADLESS_CHROME_ARGS, "--window-size=1280,800"):
        options.add_argument(argument)
    return options


@pytest.fixture
def browser_required() -> None:
    """Skip without Chromium, except where REQUIRE_BROWSER=1 (CI): there a skip is a failure."""
    missing = [tool for tool in ("chromium", "chromedriver") if shutil.which(tool) is None]
    if missing:
        reason = f"{', '.join(missing)} not installed (apt-get install chromium chromium-driver)"
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(f"REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)


@pytest.fixture
def live_settings(tmp_path: Path) -> Settings:
    """The default app on a fresh SQLite file, with a fast feed so tests see ticks quickly."""
    return Settings.from_env(
        {
            "STRATLENS_DATA_DIR": str(tmp_path),
            "FEED_SPEED": "4",
            "FEED_UPDATES_PER_CANDLE": "2",
            "REFRESH_MS": "250",
        }
    )


@pytest.fixture
def live_app(live_settings: Settings) -> Iterator:
    app = create_app(live_settings)
    yield app
    app.server.extensions["stratlens"].close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
