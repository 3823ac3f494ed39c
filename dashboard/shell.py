"""The app's frame: navbar (pages, theme switch, feed badge), the pages, and their routing;
and what every page shares (the assets folder, the charts' plotly config).

The pages are in the layout at once and a path change only shows one and hides the others,
so going to the backtest page and back keeps the live chart, its view and its zoom. The
alerts' toasts (dashboard.pages.alerts) sit in the frame, so every page shows them. The live
page's view stays in the URL's query (dashboard.pages.live.view_state); the Live link carries
it back. The formulas page (dashboard.pages.formulas) is served apart, as plain HTML.
"""

from __future__ import annotations

from pathlib import Path

import dash_bootstrap_components as dbc
from dash import ClientsideFunction, Dash, Input, Output, State, dcc, html
from dash.development.base_component import Component

from dashboard.pages.formulas import FORMULAS_URL

PAGES = ("live", "backtest", "trading", "alerts")
ASSETS = Path(__file__).resolve().parent / "assets"  # served locally: the app needs no CDN
GRAPH_CONFIG = {  # the plotly config of the pages' main charts
    "displaylogo": False,
    "scrollZoom": True,
    "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d"],
}


def one_in_flight(app: Dash, gate: str, interval: str, go: str, busy: str) -> Output:
    """Let ``interval``'s ticks reach the server one at a time: the clientside ``gate``
    (assets/chart_view.js, a ``pollGate()``) writes ``go`` only when the ``busy`` store is off.
    The server callback takes ``Input(go, "data")`` and ``running=[(returned, True, False)]``,
    so a slow answer lands instead of being superseded by the next tick and thrown away.
    The layout holds ``dcc.Store(id=go)`` and ``dcc.Store(id=busy, data=False)``."""
    app.clientside_callback(
        ClientsideFunction("stratlens", gate),
        Output(go, "data"),
        Input(interval, "n_intervals"),
        State(busy, "data"),
        prevent_initial_call=True,
    )
    return Output(busy, "data")


def navbar() -> dbc.Navbar:
    """The app's navbar: the pages, the formulas (a new tab), the theme switch, the feed badge."""
    return navbar_frame(
        "live strategy charts",
        [
            dbc.NavLink("Live", id="nav-live", href="/", active="exact"),
            dbc.NavLink("Backtest", id="nav-backtest", href="/backtest", active="exact"),
            dbc.NavLink("Trading", id="nav-trading", href="/trading", active="exact"),
            dbc.NavLink("Alerts", id="nav-alerts", href="/alerts", active="exact"),
            dbc.NavLink(
                "Formulas",
                id="nav-formulas",
                href=FORMULAS_URL,
                target="_blank",
                external_link=True,
            ),
        ],
        html.Div(
            [
                dbc.Switch(
                    id="theme-switch",
                    label="Light",
                    value=False,
                    className="sl-theme-switch mb-0 me-3",
                ),
                dbc.Badge("STARTING", id="feed-badge", color="secondary", className="sl-badge"),
            ],
            className="d-flex align-items-center",
        ),
    )


def navbar_frame(
    tagline: str, links: list[Component], tools: Component | None = None
) -> dbc.Navbar:
    """A StratLens navbar: the brand and ``tagline``, the nav ``links``, then ``tools`` (at
    the right) if any; the app's and the standalone backtest page's."""
    brand = html.Div(
        [
            html.Span("StratLens", className="sl-brand"),
            html.Span(tagline, className="sl-tagline"),
        ],
        className="d-flex align-items-center",
    )
    nav = dbc.Nav(links, className="sl-nav ms-4 me-auto", navbar=True)
    return dbc.Navbar(
        dbc.Container([brand, nav] if tools is None else [brand, nav, tools], fluid=True),
        className="sl-navbar",
        color="dark",
        dark=True,
    )


def shell(
    live_page: Component,
    backtest_page: Component,
    alerts_page: Component | None = None,
    toasts: Component | None = None,
    trading_page: Component | None = None,
) -> html.Div:
    hidden = {"display": "none"}
    return html.Div(
        [
            dcc.Location(id="url", refresh=False),
            navbar(),
            dbc.Container(
                [
                    html.Div(live_page, id="page-live"),
                    html.Div(backtest_page, id="page-backtest", style=hidden),
                    html.Div(trading_page, id="page-trading", style=hidden),
                    html.Div(alerts_page, id="page-alerts", style=hidden),
                ],
                fluid=True,
                className="sl-main",
            ),
            *([] if toasts is None else [toasts]),
        ],
        id="app-root",
        className="sl-app",
        **{"data-bs-theme": "dark"},
    )


def shown_page(pathname: str | None) -> str:
    """The page (of PAGES) the path shows; unknown paths show the live page. Every page is in
    the layout: the hidden ones' callbacks ask this to do nothing."""
    name = (pathname or "/").strip("/") or "live"
    return name if name in PAGES else "live"


def page_styles(pathname: str | None) -> tuple[dict, ...]:
    """One style per page (PAGES order): the path's page shown, the others hidden."""
    shown = shown_page(pathname)
    return tuple({} if page == shown else {"display": "none"} for page in PAGES)


def register_callbacks(app: Dash) -> None:
    @app.callback(
        *(Output(f"page-{page}", "style") for page in PAGES),
        Input("url", "pathname"),
    )
    def _route(pathname: str | None):
        return page_styles(pathname)

    app.clientside_callback(  # the backtest page colours its charts and grids from its store
        """function (light) { return light ? "light" : "dark"; }""",
        Output("bt-theme", "data"),
        Input("theme-switch", "value"),
    )
    app.clientside_callback(  # Bootstrap's colour mode on <html>, and the live link's query
        """function (light, search, pathname) {
            const theme = light ? "light" : "dark";
            document.documentElement.setAttribute("data-bs-theme", theme);
            const root = document.getElementById("app-root");
            if (root) root.setAttribute("data-bs-theme", theme);
            const href = pathname === "/" || pathname === "" ? "/" + (search || "") : null;
            return href === null ? window.dash_clientside.no_update : href;
        }""",
        Output("nav-live", "href"),
        Input("theme-switch", "value"),
        Input("url", "search"),
        Input("url", "pathname"),
    )
