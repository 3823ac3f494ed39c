"""What the analysis pages (attribution, execution) lay out alike: a titled card, a figure
that stays drawn under its loading spinner, a number or None."""

from __future__ import annotations

import math
from typing import Any

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard.shell import GRAPH_CONFIG

KEEP_VISIBLE = {"visibility": "visible"}  # a recomputing figure stays drawn under the spinner
FIG = {**GRAPH_CONFIG, "scrollZoom": False}


def loading_graph(id_: str, height: int | None = 300) -> dcc.Loading:
    """A figure of ``height`` px (None: at least 240 px, as tall as it says) in a spinner
    shown only after half a second."""
    style = {"height": f"{height}px"} if height else {"minHeight": "240px"}
    return dcc.Loading(
        dcc.Graph(id=id_, config=FIG, style=style),
        type="dot",
        color="#f0b90b",
        delay_show=500,
        overlay_style=KEEP_VISIBLE,
    )


def card(title: str, body: list[Any], card_id: str, note: str = "", tools: Any = None):
    """A card headed by ``title`` and a muted ``note`` (``tools`` at the head's right)."""
    head = html.Div(
        [
            html.Div(
                [
                    html.Span(title, className="fw-semibold"),
                    html.Span(note, className="sl-muted small ms-2"),
                ]
            ),
            *([tools] if tools is not None else []),
        ],
        className="d-flex justify-content-between align-items-center mb-1 gap-2",
    )
    return dbc.Card(
        dbc.CardBody([head, *body], className="p-2"), id=card_id, className="sl-card mb-2 h-100"
    )


def finite(value: Any) -> float | None:
    """``value`` as a float, None when it is missing, not a number or infinite."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
