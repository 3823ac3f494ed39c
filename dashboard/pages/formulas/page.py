"""The formulas page (/docs/metrics): docs/metrics.md rendered on the server as HTML in the
app's look; each metric's ``<a id>`` anchor is the target of a KPI card's "?" link."""

from __future__ import annotations

from pathlib import Path

FORMULAS_URL = "/docs/metrics"  # docs/metrics.md as HTML, a route of the app's server
METRICS_DOC = Path(__file__).resolve().parents[3] / "docs" / "metrics.md"


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
