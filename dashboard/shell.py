"""The app's frame: navbar (pages, theme switch, feed badge), the pages, and their routing;
and what every page shares (the assets folder, the charts' plotly config).

A page is put in the layout the first time it is shown and stays there: a path change shows
one and hides the others, so going to the backtest page and back keeps the live chart, its
view and its zoom. The layout holds the live page and the page the browser asked for (the
Referer of its /_dash-layout request): the pages not yet visited cost the first load nothing
(no hidden grid rendered, none of their callbacks run). The validation layout (no request)
holds them all. The alerts' toasts (dashboard.pages.alerts) sit in the frame, so every page
shows them. The live page's view stays in the URL's query (dashboard.pages.live.view_state);
the Live link carries it back. The formulas page (dashboard.pages.formulas) is served
apart, as plain HTML.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import parse_qs

import dash_bootstrap_components as dbc
from dash import ClientsideFunction, Dash, Input, Output, State, dcc, html, no_update
from dash.development.base_component import Component

from dashboard.pages.formulas import FORMULAS_URL

PAGES = ("live", "backtest", "trading", "alerts", "attribution", "execution")
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


def navbar(light: bool = False) -> dbc.Navbar:
    """The app's navbar: the pages, the formulas (a new tab, in the app's theme), the theme
    switch (on: ``light``), the feed badge."""
    return navbar_frame(
        "live strategy charts",
        [
            dbc.NavLink("Live", id="nav-live", href="/", active="exact"),
            dbc.NavLink("Backtest", id="nav-backtest", href="/backtest", active="exact"),
            dbc.NavLink("Trading", id="nav-trading", href="/trading", active="exact"),
            dbc.NavLink("Alerts", id="nav-alerts", href="/alerts", active="exact"),
            dbc.NavLink("Attribution", id="nav-attribution", href="/attribution", active="exact"),
            dbc.NavLink("Execution", id="nav-execution", href="/execution", active="exact"),
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
                    value=light,
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


PageBuilder = Callable[[str | None], Component]  # the URL's query -> the page's layout


def shell(
    pages: Mapping[str, PageBuilder],
    shown: str | None,
    search: str | None = None,
    toasts: Component | None = None,
) -> html.Div:
    """The frame around ``pages`` (a builder per name of PAGES, given the URL's query):
    ``shown`` is built and shown, and the live page always (its callbacks write the frame:
    the URL's query, the feed badge; Dash refuses a callback whose outputs are there and
    inputs are not); the others are empty until their first visit (the callback of
    register_callbacks builds them). ``shown=None`` builds every page (the validation
    layout)."""
    mounted = [page for page in PAGES if shown in (None, page) or page == "live"]
    return html.Div(
        [
            dcc.Location(id="url", refresh=False),
            dcc.Store(id="pages-mounted", data=mounted),
            navbar(light=wants_light(search)),
            dbc.Container(
                [
                    html.Div(
                        # the query is the shown page's: a page built hidden gets none
                        pages[page](search if page == (shown or "live") else None)
                        if page in mounted
                        else None,
                        id=f"page-{page}",
                        style={} if page == (shown or "live") else {"display": "none"},
                    )
                    for page in PAGES
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


def wants_light(search: str | None) -> bool:
    """Whether the URL's query asks for the light theme (``theme=light``), on any page: a
    link to /trading?theme=light opens light, as the live page's shared views do."""
    return parse_qs((search or "").lstrip("?")).get("theme", [""])[-1] == "light"


def shown_page(pathname: str | None) -> str:
    """The page (of PAGES) the path shows; unknown paths show the live page. A visited page
    stays in the layout while hidden: its callbacks ask this to do nothing then."""
    name = (pathname or "/").strip("/") or "live"
    return name if name in PAGES else "live"


def page_styles(pathname: str | None) -> tuple[dict, ...]:
    """One style per page (PAGES order): the path's page shown, the others hidden."""
    shown = shown_page(pathname)
    return tuple({} if page == shown else {"display": "none"} for page in PAGES)


def route(
    pages: Mapping[str, PageBuilder],
    pathname: str | None,
    search: str | None,
    mounted: list[str] | None,
) -> tuple:
    """The route callback's answer: the pages' styles, their children (the shown page built
    on its first visit, no_update otherwise) and the pages now mounted."""
    shown = shown_page(pathname)
    mounted = list(mounted or [])
    first = shown not in mounted
    children = tuple(
        pages[page](search) if first and page == shown else no_update for page in PAGES
    )
    return (*page_styles(pathname), *children, [*mounted, shown] if first else no_update)


def register_callbacks(app: Dash, pages: Mapping[str, PageBuilder]) -> None:
    @app.callback(
        *(Output(f"page-{page}", "style") for page in PAGES),
        *(Output(f"page-{page}", "children") for page in PAGES),
        Output("pages-mounted", "data"),
        Input("url", "pathname"),
        State("url", "search"),
        State("pages-mounted", "data"),
    )
    def _route(pathname: str | None, search: str | None, mounted: list[str] | None):
        return route(pages, pathname, search, mounted)

    app.clientside_callback(  # the backtest page colours its charts and grids from its store
        """function (light) { return light ? "light" : "dark"; }""",
        Output("bt-theme", "data"),
        Input("theme-switch", "value"),
    )
    app.clientside_callback(  # Bootstrap's colour mode on <html>, the live link's query and
        # the formulas link's theme
        f"""function (light, search, pathname) {{
            const theme = light ? "light" : "dark";
            document.documentElement.setAttribute("data-bs-theme", theme);
            const root = document.getElementById("app-root");
            if (root) root.setAttribute("data-bs-theme", theme);
            const href = pathname === "/" || pathname === "" ? "/" + (search || "") : null;
            const live = href === null ? window.dash_clientside.no_update : href;
            return [live, "{FORMULAS_URL}" + (light ? "?theme=light" : "")];
        }}""",
        Output("nav-live", "href"),
        Output("nav-formulas", "href"),
        Input("theme-switch", "value"),
        Input("url", "search"),
        Input("url", "pathname"),
    )
