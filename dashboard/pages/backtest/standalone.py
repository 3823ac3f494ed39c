"""The backtest page alone in a Dash app, framed by a navbar of its own: for browser tests and
screenshots (the app's create_app puts the page in its shell instead)."""

from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
from dash import Dash, html

from dashboard.pages.backtest.callbacks import register_callbacks
from dashboard.pages.backtest.layout import layout
from dashboard.shell import ASSETS, navbar_frame


def _navbar() -> dbc.Navbar:
    """The standalone app's navbar (:func:`make_test_app`); the app's shell has its own."""
    return navbar_frame(
        "backtests",
        [
            dbc.NavLink("Live", href="/", external_link=True, id="bt-nav-live"),
            dbc.NavLink(
                "Backtest",
                href="/backtest",
                external_link=True,
                active=True,
                id="bt-nav-backtest",
            ),
        ],
    )


def make_test_app(
    services: Any,
    manager: Any,
    *,
    theme: str = "dark",
    min_step_s: float = 0.0,
    sweep_workers: int | None = 0,
) -> Dash:
    """A standalone Dash app serving this page, framed by a navbar, at every path (/backtest
    too): for browser tests and screenshots. dashboard.server.create_app puts :func:`layout` in
    its shell. ``sweep_workers``: see :func:`register_callbacks` (0: sweeps run in the
    background job's process, no pool to spawn on a test machine)."""
    app = Dash(
        __name__,
        title="StratLens · backtest",
        update_title=None,
        assets_folder=str(ASSETS),
        serve_locally=True,
    )
    app.layout = lambda: html.Div(
        [_navbar(), dbc.Container(layout(services, theme), fluid=True, className="sl-main")],
        className="sl-app",
        **{"data-bs-theme": theme},
    )
    register_callbacks(app, services, manager, min_step_s=min_step_s, sweep_workers=sweep_workers)
    return app
