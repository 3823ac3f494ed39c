"""The Trading page's forms: a new paper account, a new deployment (strategy, parameters,
market, settings), and what they read back into PaperTrading's arguments.

The strategy's parameter inputs are the backtest form's (:func:`~dashboard.pages.backtest.
form.param_inputs`, with this page's id types) and are checked by the same function
(:func:`~dashboard.pages.backtest.parse.strategy_params`). The settings are
:class:`trading.config.DeploymentSettings`' fields in its units (fractions: 0.02 = 2 %);
an empty field keeps the default (off for the stops and limits). What cannot be used is
refused with a message naming the field and the value (:class:`DeployFormError`, or
PaperTrading's PaperError for the settings as a whole), shown in red under the form.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import dash_bootstrap_components as dbc
from dash import html

from analytics.backtest import SIZINGS
from dashboard.pages.backtest.form import param_inputs, strategy_options
from dashboard.pages.backtest.parse import DIRECTIONS, FormError, strategy_params

PARAM_TYPE = "tr-param"
PARAM_FEEDBACK = "tr-param-feedback"
DEFAULT_STRATEGY = "sma_crossover"

# DeploymentSettings field -> (label, placeholder); integers are parsed as such
SETTINGS: dict[str, tuple[str, str]] = {
    "size": ("Size", "fraction / units"),
    "commission_pct": ("Commission (fraction)", "0"),
    "slippage_bps": ("Slippage [bps]", "0"),
    "spread_bps": ("Spread [bps]", "0"),
    "stop_loss_pct": ("Stop-loss (fraction)", "off"),
    "take_profit_pct": ("Take-profit (fraction)", "off"),
    "trailing_stop_pct": ("Trailing stop (fraction)", "off"),
    "max_position": ("Max position [units]", "off"),
    "max_orders_per_minute": ("Max orders / minute", "off"),
    "volume_cap": ("Volume cap (share of bar)", "off"),
}
INTEGER_SETTINGS = frozenset({"max_orders_per_minute"})


class DeployFormError(ValueError):
    """A form value that cannot be used: ``field`` names it, the message says why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def setting_id(name: str) -> str:
    return f"tr-set-{name.replace('_', '-')}"


def _text(id_: str, placeholder: str = "", value: Any = None) -> dbc.Input:
    return dbc.Input(
        id=id_, type="text", value=value, placeholder=placeholder, size="sm", autocomplete="off"
    )


def _field(label: str, component: Any, width: int = 6) -> dbc.Col:
    return dbc.Col([html.Label(label, className="sl-label"), component], width=width)


def _select(label: str, id_: str, values: Sequence[str], value: Any, labels=None) -> dbc.Col:
    options = labels if labels is not None else [{"label": v, "value": v} for v in values]
    return _field(label, dbc.Select(id=id_, options=options, value=value, size="sm"), 4)


def account_form() -> html.Div:
    """Name, cash and the drawdown that halts the account (a fraction, empty: none)."""
    return html.Div(
        [
            dbc.Row(
                [
                    _field("New account", _text("tr-new-account", "name"), 4),
                    _field("Cash", _text("tr-new-cash", "10000", "10000"), 3),
                    _field("Max drawdown", _text("tr-new-dd", "off (0.2 = 20 %)"), 3),
                    dbc.Col(
                        dbc.Button(
                            "Create",
                            id="tr-create-account",
                            size="sm",
                            color="secondary",
                            outline=True,
                            className="w-100",
                        ),
                        width=2,
                        className="d-flex align-items-end",
                    ),
                ],
                className="g-2",
            ),
            html.Div(id="tr-account-message", className="small text-danger mt-1"),
        ]
    )


def deploy_form(symbols: Sequence[str], timeframes: Sequence[str]) -> html.Div:
    """The new deployment's fields; it deploys to the account chosen at the top of the page."""
    settings = [
        _field(label, _text(setting_id(name), placeholder), 4)
        for name, (label, placeholder) in SETTINGS.items()
    ]
    first_symbol = symbols[0] if symbols else None
    first_tf = timeframes[0] if timeframes else None
    return html.Div(
        [
            dbc.Row(
                [
                    _field("Name", _text("tr-dep-name", "e.g. sma-sp500"), 4),
                    _select(
                        "Strategy", "tr-dep-strategy", (), DEFAULT_STRATEGY, strategy_options()
                    ),
                    _select("Direction", "tr-dep-direction", DIRECTIONS, "long"),
                    _select("Symbol", "tr-dep-symbol", symbols, first_symbol),
                    _select("Timeframe", "tr-dep-timeframe", timeframes, first_tf),
                    _select("Sizing", "tr-set-sizing", SIZINGS, "all_in"),
                ],
                className="g-2",
            ),
            html.Div(strategy_inputs(DEFAULT_STRATEGY), id="tr-dep-params", className="mt-2"),
            dbc.Row(settings, className="g-2 mt-1"),
            html.Div(
                [
                    dbc.Button(
                        "Deploy", id="tr-deploy", color="warning", size="sm", className="px-4"
                    ),
                    html.Span("stopped until started", className="sl-small sl-muted ms-2"),
                ],
                className="d-flex align-items-center mt-2",
            ),
            html.Div(id="tr-deploy-message", className="small text-danger mt-1"),
        ]
    )


def strategy_inputs(strategy: str) -> list[Any]:
    return param_inputs(strategy, kind=PARAM_TYPE, feedback=PARAM_FEEDBACK)


def _number(name: str, label: str, text: Any, integer: bool = False) -> float | int | None:
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    try:
        return int(str(text).strip()) if integer else float(str(text).strip())
    except ValueError:
        kind = "a whole number" if integer else "a number"
        raise DeployFormError(name, f"{label}: {text!r} is not {kind}") from None


def account_request(name: Any, cash: Any, drawdown: Any) -> tuple[str, float, float | None]:
    """(name, cash, max drawdown) for PaperTrading.create_account; DeployFormError names a
    value that is not a number (the repository checks the ranges)."""
    if not isinstance(name, str) or not name.strip():
        raise DeployFormError("name", "New account: enter a name")
    amount = _number("cash", "Cash", cash)
    if amount is None:
        raise DeployFormError("cash", "Cash: enter an amount > 0")
    return name.strip(), float(amount), _number("max_drawdown", "Max drawdown", drawdown)


def deploy_request(
    *,
    name: Any,
    account: str | None,
    strategy: str | None,
    direction: str | None,
    param_ids: Sequence[Mapping[str, Any]],
    param_values: Sequence[Any],
    symbol: str | None,
    timeframe: str | None,
    sizing: str | None,
    settings: Mapping[str, Any],
) -> dict[str, Any]:
    """PaperTrading.deploy's keyword arguments from the form's values (``settings``: field
    -> text, the :data:`SETTINGS` fields). DeployFormError names the first field that is
    missing or not a number; every strategy parameter problem is listed."""
    if not account:
        raise DeployFormError("account", "Account: choose or create an account first")
    if not isinstance(name, str) or not name.strip():
        raise DeployFormError("name", "Name: enter a name for the deployment")
    params = {i["name"]: v for i, v in zip(param_ids, param_values, strict=False)}
    try:
        chosen, checked = strategy_params(strategy, params, direction)
    except FormError as exc:
        raise DeployFormError(exc.field, "; ".join(exc.problems.values())) from None
    if not symbol or not timeframe:
        raise DeployFormError("symbol", "Symbol and timeframe: choose both")
    values: dict[str, Any] = {"sizing": sizing or "all_in"}
    for field, (label, _) in SETTINGS.items():
        number = _number(field, label, settings.get(field), field in INTEGER_SETTINGS)
        if number is not None:
            values[field] = number
    return {
        "name": name.strip(), "account": account, "strategy": chosen, "params": checked,
        "symbol": symbol, "timeframe": timeframe, "settings": values,
    }  # fmt: skip
