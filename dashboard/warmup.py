"""The server's warm-up: what a fresh process pays once, paid at start-up in a background
thread instead of by the first trader's request.

>>> warm = WarmUp(services, default_view)     # the live page's first view: (symbol, timeframe)
>>> warm.start()                              # returns at once; warm.done is set when finished
>>> manager = WarmDiskcacheManager(diskcache.Cache(path), warm)

A fresh server process imports plotly's figure machinery, loads the simulation kernel (the
prebuilt one of analytics/_kernel_aot.py, or numba's from its on-disk cache), compiles
SQLAlchemy's statements and reads the default symbol's history into its chart track the first
time each is used: at a
million bars about 7 s for the first live chart and 2.5 s for a backtest, against 0.1 s and
0.4 s warm. The warm-up does each once, in this order:

- the live page's first view (``default_view``), as the page draws it and in level of
  detail (its whole history read into the shared chart track, the figures serialised);
- every registered strategy, with its default parameters, backtested on the last
  :data:`WARM_BARS` bars of the first stored series with the default settings and with
  backtesting.py's fill rules (the two families of simulation kernels), nothing stored, and
  the backtest page's result built and serialised from one of them.

The backtest page's runs are dash background callbacks, each in a process forked from the
server: :class:`WarmDiskcacheManager` forks only once the warm-up is done (waiting for it at
most :data:`FORK_WAIT_S`), so every run starts from the warmed process (kernels compiled,
modules imported) and never forks while the warm-up thread holds a lock. A warm-up that fails
is logged and leaves the server as it would be without one.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import dash
import pandas as pd
from dash._utils import to_json

from analytics.backtest import BacktestSettings
from database.repositories import CandleRepository
from services.backtests import BacktestRequest, context_from, run_request
from strategies import registry

log = logging.getLogger("stratlens")

WARM_BARS = 500  # bars of each warm-up backtest: enough for every strategy's longest default
FORK_WAIT_S = 60.0  # a Run waits at most this long for the warm-up before its process forks


class WarmUp:
    """The warm-up of one server (see the module docstring): ``start()`` runs it in a daemon
    thread; ``done`` is set when it finished (or failed); ``seconds`` is how long it took,
    ``error`` the first line of what failed (None when nothing did)."""

    def __init__(self, services: Any, default_view: tuple[str | None, str | None]) -> None:
        self.services = services
        self.default_view = default_view
        self.done = threading.Event()
        self.seconds: float | None = None
        self.error: str | None = None

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="stratlens-warmup", daemon=True)
        thread.start()
        return thread

    def run(self) -> None:
        """The warm-up, in the calling thread; ``done`` is set whatever happens."""
        started = time.perf_counter()
        try:
            warm_live(self.services, *self.default_view)
            warm_backtests(self.services)
        except Exception as exc:  # a warm-up is an optimisation: the server runs without it
            self.error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            log.warning("warm-up failed (the first requests will be slower): %s", self.error)
        finally:
            self.seconds = time.perf_counter() - started
            self.done.set()
            log.info("warm-up finished in %.1f s", self.seconds)

    def wait(self, timeout: float = FORK_WAIT_S) -> bool:
        """True once the warm-up is done; False after ``timeout`` seconds without."""
        return self.done.wait(timeout)


def warm_live(services: Any, symbol: str | None, timeframe: str | None) -> None:
    """The live page's first figure of ``symbol`` ``timeframe``, as drawn and in level of
    detail (the whole history read into the chart track once), serialised."""
    from dashboard.pages.live.chart import LiveContext, view_chart
    from dashboard.pages.live.view_state import ViewState

    if not symbol or not timeframe:
        return
    live = LiveContext(services.market_data, services.tracks, services.settings.chart_bars)
    for lod in (False, True):
        figure, state = view_chart(live, ViewState(symbol=symbol, timeframe=timeframe, lod=lod))
        to_json([figure, state])


def warm_backtests(services: Any) -> None:
    """Every registered strategy backtested on the last :data:`WARM_BARS` bars of the first
    stored series, with the default settings and backtesting.py's; nothing stored. The
    backtest page's result of the first one is built and serialised."""
    from dashboard.pages.backtest.results import result_outputs

    with services.sessions() as session:
        repo = CandleRepository(session)
        series = repo.series()
        if not series:
            return
        first = series[0]
        tail = repo.frame(first.symbol, first.timeframe, last=WARM_BARS)
    if tail.empty:
        return
    start: pd.Timestamp = tail.index[0]
    context = context_from(services.sessions, services.integrator)
    shown = False
    for cls in registry.all_strategies():
        params = cls.validate({})
        for settings in (BacktestSettings(), BacktestSettings(compat="backtesting.py")):
            request = BacktestRequest(
                cls.name, params, first.symbol, first.timeframe, start, None, settings
            )
            try:
                result = run_request(request, context, store=False, pin_window=False)
            except Exception as exc:  # one strategy that cannot run here: warm the others
                log.info("warm-up: %s not warmed: %s", request.label, exc)
                continue
            if not shown:
                to_json(list(result_outputs(result, "dark", "warm").values()))
                shown = True


class WarmDiskcacheManager(dash.DiskcacheManager):
    """A ``dash.DiskcacheManager`` whose jobs fork only once ``warm`` is done (at most
    :data:`FORK_WAIT_S` later): each job's process starts from the warmed server."""

    def __init__(self, cache: Any, warm: WarmUp | None = None, **kwargs: Any) -> None:
        super().__init__(cache, **kwargs)
        self.warm = warm

    def call_job_fn(self, key, job_fn, args, context):
        if self.warm is not None and not self.warm.wait():
            log.warning("a background job starts before the warm-up finished")
        return super().call_job_fn(key, job_fn, args, context)
