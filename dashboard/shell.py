"""The app's frame: navbar (pages, theme switch, feed badge), the pages, and their routing.

Both pages are in the layout at once and a path change only shows one and hides the other,
so going to the backtest page and back keeps the live chart, its view and its zoom. The live
page's view stays in the URL's query (dashboard.view_state); the Live link carries it back.
"""

from __future__ import annotations

from pathlib import Path

import dash_bootstrap_components as dbc
from dash import Dash, Input, Output, dcc, html
from dash.development.base_component import Component

PAGES = ("live", "backtest")
FORMULAS_URL = "/docs/metrics"  # docs/metrics.md as HTML, served by app.py
METRICS_DOC = Path(__file__).resolve().parent.parent / "docs" / "metrics.md"


def navbar() -> dbc.Navbar:
    return dbc.Navbar(
        dbc.Container(
            [
                html.Div(
                    [
                        html.Span("StratLens", className="sl-brand"),
                        html.Span("live strategy charts", className="sl-tagline"),
                    ],
                    className="d-flex align-items-center",
                ),
                dbc.Nav(
                    [
                        dbc.NavLink("Live", id="nav-live", href="/", active="exact"),
                        dbc.NavLink(
                            "Backtest", id="nav-backtest", href="/backtest", active="exact"
                        ),
                        dbc.NavLink(
                            "Formulas",
                            id="nav-formulas",
                            href=FORMULAS_URL,
                            target="_blank",
                            external_link=True,
                        ),
                    ],
                    className="sl-nav ms-4 me-auto",
                    navbar=True,
                ),
                html.Div(
                    [
                        dbc.Switch(
                            id="theme-switch",
                            label="Light",
                            value=False,
                            className="sl-theme-switch mb-0 me-3",
                        ),
                        dbc.Badge(
                            "STARTING", id="feed-badge", color="secondary", className="sl-badge"
                        ),
                    ],
                    className="d-flex align-items-center",
                ),
            ],
            fluid=True,
        ),
        className="sl-navbar",
        color="dark",
        dark=True,
    )


def formulas_html() -> str:
    """docs/metrics.md as a page in the app's look: every metric's formula per convention
    preset; its ``<a id>`` anchors are the targets of the KPI cards' "?" links."""
    import markdown  # the formulas page only

    body = markdown.markdown(METRICS_DOC.read_text(), extensions=["tables", "fenced_code"])
    return (
        '<!doctype html><html data-bs-theme="dark"><head><meta charset="utf-8">'
        "<title>StratLens · metric formulas</title>"
        '<link rel="stylesheet" href="/assets/00-bootstrap.min.css">'
        '<link rel="stylesheet" href="/assets/10-stratlens.css"></head>'
        f'<body class="sl-app"><main class="container py-4 sl-doc">{body}</main></body></html>'
    )


def shell(live_page: Component, backtest_page: Component) -> html.Div:
    return html.Div(
        [
            dcc.Location(id="url", refresh=False),
            navbar(),
            dbc.Container(
                [
                    html.Div(live_page, id="page-live"),
                    html.Div(backtest_page, id="page-backtest", style={"display": "none"}),
                ],
                fluid=True,
                className="sl-main",
            ),
        ],
        id="app-root",
        className="sl-app",
        **{"data-bs-theme": "dark"},
    )


def page_styles(pathname: str | None) -> tuple[dict, ...]:
    """One style per page (PAGES order): the path's page shown, the others hidden; unknown
    paths show the live page."""
    name = (pathname or "/").strip("/") or "live"
    shown = name if name in PAGES else "live"
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
