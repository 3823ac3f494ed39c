"""The formulas page (/docs/metrics): docs/metrics.md rendered on the server as HTML in the
app's look, for a trader: the app's navbar (the way back), what the numbers are and how to
read the page, the sections a trader reads first and the developer's notes (the Python API,
the reference tests) folded at the end. Each metric's ``<a id>`` anchor is the target of a
KPI card's "?" link."""

from __future__ import annotations

import html
import re
from pathlib import Path

FORMULAS_URL = "/docs/metrics"  # docs/metrics.md as HTML, a route of the app's server
METRICS_DOC = Path(__file__).resolve().parents[3] / "docs" / "metrics.md"
# sections of docs/metrics.md for developers (by the start of their title): folded at the end
DEVELOPER_SECTIONS = ("Rolling and incremental", "Agreement with the references")

INTRO = """
<h1>How StratLens measures a strategy</h1>
<p class="lead">Every number on the Performance panel's cards and in the Comparison table is
computed from the strategy's backtest on the chart's candles, with the formulas below.</p>
<ul>
<li><b>Conventions.</b> The panel's convention menu picks how returns are annualised and
which sample the risk figures use: <i>backtesting.py</i> (the default), <i>quantstats</i>, or
<i>trade</i> (per trade, as freqtrade reports). The table under <a href="#{presets}">Presets</a>
lists what changes; a metric's row says where its formula differs.</li>
<li><b>Symbols.</b> <code>V</code> is the account value (equity) after each bar,
<code>r</code> the returns per period (daily, weekly, ...), <code>N</code> the periods per
year, <code>R</code> a trade's return, <code>rf</code> the risk-free rate.</li>
<li><b>Missing numbers.</b> A metric that cannot be computed (a profit factor without a losing
trade) shows "—", an annual figure of less than a year of data "n/a &lt;1y": never a made-up
value.</li>
<li>The <b>?</b> next to a card opens that metric's row here.</li>
</ul>
"""


def _navbar(theme: str = "dark") -> str:
    """The app's navbar (dashboard.shell's look, here as plain HTML): the way back, in the
    same ``theme`` (its links carry ``theme=light``)."""
    query = "?theme=light" if theme == "light" else ""
    links = [
        ("Live", "/", False),
        ("Backtest", "/backtest", False),
        ("Trading", "/trading", False),
        ("Alerts", "/alerts", False),
        ("Formulas", FORMULAS_URL, True),
    ]
    items = "".join(
        f'<a class="nav-link{" active" if active else ""}" href="{href}{query}">{name}</a>'
        for name, href, active in links
    )
    return (
        '<nav class="navbar navbar-dark sl-navbar"><div class="container-fluid">'
        f'<div class="d-flex align-items-center"><a href="/{query}" class="text-decoration-none">'
        '<span class="sl-brand">StratLens</span></a>'
        '<span class="sl-tagline">metric formulas</span></div>'
        f'<div class="nav sl-nav ms-4 me-auto">{items}</div>'
        f'<a class="btn btn-sm btn-outline-secondary" href="/{query}">&larr; back to the charts</a>'
        "</div></nav>"
    )


def _sections(text: str) -> tuple[str, list[tuple[str, str]]]:
    """(the text before the first ``## `` heading, [(title, section text), ...])."""
    parts = re.split(r"(?m)^## ", text)
    return parts[0], [(p.split("\n", 1)[0].strip(), "## " + p) for p in parts[1:]]


def formulas_html(theme: str = "dark") -> str:
    """docs/metrics.md as a page in the app's look (see the module docstring), in ``theme``
    (``light``; anything else is dark): the navbar's link carries the app's theme."""
    theme = "light" if theme == "light" else "dark"
    import markdown  # the formulas page only

    preamble, sections = _sections(METRICS_DOC.read_text())
    reader = [(t, s) for t, s in sections if not t.startswith(DEVELOPER_SECTIONS)]
    developer = [s for t, s in sections if t.startswith(DEVELOPER_SECTIONS)]
    preamble = re.sub(r"(?m)^# .*\n", "", preamble, count=1)  # the intro above is the title

    def render(text: str) -> str:
        return markdown.markdown(text, extensions=["tables", "fenced_code", "toc"])

    contents = "".join(
        f'<li><a href="#{_slug(title)}">{html.escape(_plain(title))}</a></li>'
        for title, _ in reader
    )
    presets = next((_slug(t) for t, _ in reader if t.startswith("Presets")), "")
    body = (
        INTRO.format(presets=presets)
        + f'<nav class="sl-doc-contents"><b>On this page</b><ul>{contents}</ul></nav>'
        + render("\n".join(s for _, s in reader))
        + '<details class="sl-doc-dev"><summary>For developers: the Python API and the tests '
        "behind these numbers</summary>" + render(preamble + "\n".join(developer)) + "</details>"
    )
    return (
        f'<!doctype html><html data-bs-theme="{theme}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>StratLens · metric formulas</title>"
        '<link rel="stylesheet" href="/assets/00-bootstrap.min.css">'
        '<link rel="stylesheet" href="/assets/10-stratlens.css"></head>'
        f'<body class="sl-app">{_navbar(theme)}'
        f'<main class="container py-4 sl-doc">{body}</main></body></html>'
    )


def _plain(title: str) -> str:
    """A heading as text: ``Presets (`PRESETS`, ...)`` -> ``Presets``."""
    return re.sub(r"\s*\(.*\)\s*$", "", title).replace("`", "")


def _slug(title: str) -> str:
    """The id the markdown "toc" extension gives a heading of ``title``."""
    from markdown.extensions.toc import slugify

    return slugify(re.sub(r"`", "", title), "-")
