"""Browser fixtures: dash_duo drives a real headless Chromium (Debian's chromium + chromedriver)."""

from __future__ import annotations

import itertools
import os
import shutil
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from config.settings import Settings
from dashboard.server import create_app
from scripts.headless import HEADLESS_CHROME_ARGS
from tests.dashboard.waits import until

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


class _Body:
    """An app's response body that tells when the server is done with it: at ``close()``, the
    WSGI rule, or when it is freed. werkzeug's development server skips ``close()`` when the
    client dropped the connection while the server drains the socket after the body (its
    read raises first): the page left for about:blank at teardown, on a busy machine."""

    def __init__(self, body: Iterable[bytes], done: Callable[[], None]) -> None:
        self._body = body
        self._done = done
        weakref.finalize(self, done)

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._body)

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._done()


def pytest_setup_options():
    from selenium.webdriver.chrome.options import Options

    options = Options()
    # no smooth scrolling (Bootstrap's, under prefers-reduced-motion: no-preference): the
    # page would still be sliding when a click lands on the element Selenium scrolled to
    arguments = ("--window-size=1280,800", "--force-prefers-reduced-motion")
    for argument in (*HEADLESS_CHROME_ARGS, *arguments):
        options.add_argument(argument)
    return options


class InFlight:
    """Counts the requests a served app is answering (WSGI middleware: from the call until the
    server is done with the body)."""

    def __init__(self, wsgi_app: Callable[..., Iterable[bytes]]) -> None:
        self._inner = wsgi_app
        self._lock = threading.Lock()
        self._keys = itertools.count()
        self.count = 0
        self.open: dict[int, tuple[str, int | None]] = {}  # request -> (path, thread id)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        key = next(self._keys)
        with self._lock:
            self.count += 1
            self.open[key] = (environ.get("PATH_INFO", "?"), threading.get_ident())
        try:
            body = self._inner(environ, start_response)
        except BaseException:
            self._done(key)
            raise
        return _Body(body, lambda: self._done(key))

    def _done(self, key: int) -> None:
        with self._lock:  # once per request, whichever way its end is heard first
            if self.open.pop(key, None) is not None:
                self.count -= 1

    def describe(self) -> str:
        """The requests still in flight and where their threads are (a teardown that waited
        in vain says what it waited for)."""
        import sys
        import traceback

        frames = sys._current_frames()
        with self._lock:
            open_ = list(self.open.values())
        lines = []
        for path, thread in open_:
            frame = frames.get(thread) if thread is not None else None
            where = "".join(traceback.format_stack(frame)[-12:]) if frame else "(thread gone)"
            lines.append(f"{path} on thread {thread}:\n{where}")
        return "\n".join(lines) or "none"


@pytest.fixture
def dash_duo(dash_duo: Any) -> Iterator[Any]:
    """dash's dash_duo, settled before it is torn down: the page is left (no more interval
    ticks) and every request in flight answered. dash stops its threaded server by raising
    SystemExit in every thread it started, so a callback still computing then (a busy machine)
    would die with an unhandled thread exception."""
    started: list[InFlight] = []
    start_server = dash_duo.start_server

    def start_counting(app: Any, **kwargs: Any) -> Any:
        app.server.wsgi_app = counter = InFlight(app.server.wsgi_app)
        started.append(counter)
        # DASH_TEST_PORT: another port than dash's 8050, so that two test runs can share a machine
        kwargs.setdefault("port", int(os.environ.get("DASH_TEST_PORT", "8050")))
        return start_server(app, **kwargs)

    dash_duo.start_server = start_counting
    yield dash_duo
    if started:
        dash_duo.driver.get("about:blank")
        until(
            lambda: all(counter.count == 0 for counter in started),
            timeout=60,
            seen=lambda: "; ".join(counter.describe() for counter in started),
        )


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
