"""Chart colours: one frozen theme per look, used by every trace and axis of a chart.

>>> THEMES["light"].background
'#ffffff'
>>> DARK.strategy_palette[0], DARK.marker_symbols[0]
('#42a5f5', ('triangle', 'x'))

``marker_symbols`` pairs an entry stem with an exit symbol, one pair per strategy: a long entry
is ``f"{entry}-up"``, a short entry ``f"{entry}-down"``, a long exit ``exit`` and a short exit
``f"{exit}-open"`` (every combination is a valid plotly symbol; the tests check it).
"""

from __future__ import annotations

from dataclasses import dataclass

# entry stems take -up/-down, exit symbols take -open: every pair a distinct look
_MARKER_SYMBOLS: tuple[tuple[str, str], ...] = (
    ("triangle", "x"),
    ("arrow", "cross"),
    ("star-triangle", "circle-x"),
    ("arrow-bar", "square-x"),
    ("triangle", "diamond-x"),
    ("arrow", "hourglass"),
    ("star-triangle", "diamond-cross"),
    ("arrow-bar", "circle-cross"),
)


@dataclass(frozen=True)
class ChartTheme:
    """Every colour a chart uses; the defaults are the dark, TradingView-like look (``DARK``).

    >>> ChartTheme() == DARK
    True
    """

    background: str = "#131722"
    grid: str = "#232837"
    text: str = "#b2b5be"
    up: str = "#26a69a"
    down: str = "#ef5350"
    forming: str = "#f0b90b"
    volume_alpha: float = 0.45
    name: str = "dark"
    panel_line: str = "#2a2e39"  # the rule between stacked panels
    level: str = "#787b86"  # reference levels (RSI 30/70) and the cross-hair spikes
    hover_background: str = "#1e222d"
    hover_border: str = "#363a45"
    hover_text: str = "#d1d4dc"
    # indicator lines, in order of appearance
    line_palette: tuple[str, ...] = (
        "#2962ff",
        "#ff9800",
        "#e040fb",
        "#00bcd4",
        "#ffeb3b",
        "#f06292",
        "#8bc34a",
        "#90a4ae",
    )
    band_alpha: float = 0.08  # the fill between Bollinger (and Donchian) bands
    # one colour per strategy's signal markers (>= 3:1 contrast on the background)
    strategy_palette: tuple[str, ...] = (
        "#42a5f5",
        "#ffa726",
        "#ce93d8",
        "#26c6da",
        "#ffee58",
        "#f06292",
        "#9ccc65",
        "#ff7043",
        "#b0bec5",
        "#7986cb",
    )
    profit: str = "#26a69a"
    loss: str = "#ef5350"
    # an account's real fills (the executions layer): saturated, outlined in a contrast colour
    execution_buy: str = "#00e676"
    execution_sell: str = "#ff1744"
    execution_line: str = "#ffffff"
    marker_symbols: tuple[tuple[str, str], ...] = _MARKER_SYMBOLS


DARK = ChartTheme()

LIGHT = ChartTheme(
    background="#ffffff",
    grid="#e0e3eb",
    text="#131722",
    up="#089981",
    down="#f23645",
    forming="#e08a00",
    volume_alpha=0.45,
    name="light",
    panel_line="#d1d4dc",
    level="#787b86",
    hover_background="#ffffff",
    hover_border="#d1d4dc",
    hover_text="#131722",
    line_palette=(
        "#2962ff",
        "#e65100",
        "#9c27b0",
        "#00838f",
        "#9e7700",
        "#d81b60",
        "#558b2f",
        "#607d8b",
    ),
    band_alpha=0.08,
    strategy_palette=(
        "#1565c0",
        "#e65100",
        "#7b1fa2",
        "#00838f",
        "#9e7700",
        "#c2185b",
        "#2e7d32",
        "#5d4037",
        "#455a64",
        "#3949ab",
    ),
    profit="#089981",
    loss="#f23645",
    execution_buy="#00a152",
    execution_sell="#d50000",
    execution_line="#131722",
)

THEMES: dict[str, ChartTheme] = {"dark": DARK, "light": LIGHT}


def rgba(hex_color: str, alpha: float) -> str:
    """A ``#rrggbb`` colour with an alpha: ``rgba("#ff0000", 0.5) == "rgba(255,0,0,0.5)"``."""
    r, g, b = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"
