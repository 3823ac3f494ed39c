"""The Trading page's plain functions on a real database (SQLite and PostgreSQL): the forms
read into PaperTrading's arguments, a refresh that sends nothing when nothing changed, cancel
and modify of an open order, the KPI cards."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from dash import no_update
from dash.exceptions import PreventUpdate

from components.charts.theme import THEMES
from dashboard.pages.trading import (
    DeployFormError,
    account_request,
    deploy_request,
    order_action,
    refresh,
)
from dashboard.pages.trading.callbacks import _GRID_KEYS
from dashboard.pages.trading.tables import account_kpis, grid_style
from database.repositories.trading import OrderRow, TradingRepository
from services.paper import PaperTrading
from services.trading_views import TradingViews, account_summary

FORM = {
    "name": "sma-1", "account": "demo", "strategy": "sma_crossover", "direction": "both",
    "param_ids": [{"name": "fast"}, {"name": "slow"}], "param_values": ["3", "8"],
    "symbol": "SP500", "timeframe": "1d", "sizing": "fraction",
    "settings": {"size": "0.5", "take_profit_pct": "0.2", "max_orders_per_minute": "6",
                 "stop_loss_pct": ""},
}  # fmt: skip


def test_the_deployment_form_reads_into_deploy_arguments():
    request = deploy_request(**FORM)
    assert request["params"] == {"fast": 3, "slow": 8, "direction": "both"}
    assert request["settings"] == {
        "sizing": "fraction", "size": 0.5, "take_profit_pct": 0.2, "max_orders_per_minute": 6,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"account": None}, "account", "choose or create an account"),
        ({"name": "  "}, "name", "enter a name"),
        ({"param_values": ["1", "8"]}, "fast", "fast=1 is out of range"),
        ({"strategy": "smaa_crossover"}, "strategy", "sma_crossover"),
        ({"settings": {"max_orders_per_minute": "1.5"}}, "max_orders_per_minute",
         "Max orders / minute: '1.5' is not a whole number"),
        ({"settings": {"size": "half"}}, "size", "Size: 'half' is not a number"),
    ],
)  # fmt: skip
def test_an_invalid_form_names_the_field(change, field, message):
    with pytest.raises(DeployFormError, match=message) as caught:
        deploy_request(**{**FORM, **change})
    assert caught.value.field == field


def test_the_account_form():
    assert account_request(" demo ", "10000", "") == ("demo", 10_000.0, None)
    assert account_request("demo", 500, "0.2") == ("demo", 500.0, 0.2)
    with pytest.raises(DeployFormError, match="Cash: enter an amount"):
        account_request("demo", "", None)


def save_open_order(session_factory, account_id: int) -> datetime:
    """A manual GTC limit buy "o1" far from the market; the time it was placed."""
    now = datetime.now(UTC)
    order = OrderRow(
        "o1", "SP500", "buy", "limit", "GTC", "new", "manual", now, now, quantity=1.0,
        limit_price=1.0,
    )  # fmt: skip
    with session_factory.begin() as session:
        TradingRepository(session).save_orders(account_id, [order])
    return now


def test_refresh_sends_only_what_changed(session_factory):
    paper = PaperTrading(session_factory)
    account = paper.create_account("demo", 1_000.0, 0.1)
    views = TradingViews(session_factory)
    grids = ("tr-deployments", "tr-positions", "tr-orders", "tr-fills")
    first = refresh(views, "demo", False, None)
    # the first answer: the cards (built with their values), every grid's theme and rows
    assert first["tr-status.children"].startswith("account demo (active)")
    assert first["tr-kpis.children"] is not no_update
    assert first["tr-kpi-equity.children"] is no_update  # the new cards carry the values
    assert [first[f"{g}.dashGridOptions"] for g in grids] == [
        grid_style(THEMES["dark"], row_id, **options)["dashGridOptions"]
        for row_id, options in _GRID_KEYS.values()
    ]
    assert [first[f"{g}.rowData"] for g in grids] == [[], [], [], []]
    with pytest.raises(PreventUpdate):
        refresh(views, "demo", False, first["tr-shown.data"])

    # the theme: cards and grids' options again, nothing else
    light = refresh(views, "demo", True, first["tr-shown.data"])
    sent = {k for k, v in light.items() if v is not no_update}
    assert sent == {"tr-kpis.children", "tr-shown.data", *(f"{g}.dashGridOptions" for g in grids)}
    assert light["tr-fills.dashGridOptions"]["theme"] != first["tr-fills.dashGridOptions"]["theme"]

    # an open order: its grid's rows and the status line, as leaf values
    now = save_open_order(session_factory, account.id)
    changed = refresh(views, "demo", True, light["tr-shown.data"])
    sent = {k for k, v in changed.items() if v is not no_update}
    assert sent == {"tr-orders.rowData", "tr-status.children", "tr-shown.data"}
    assert [row["client_order_id"] for row in changed["tr-orders.rowData"]] == ["o1"]

    # the account moved: the cards' values and styles, not new cards
    with session_factory.begin() as session:
        repo = TradingRepository(session)
        row = repo.account("demo")
        assert row is not None
        repo.save_account(replace(row, cash=1_250.0), now)
    moved = refresh(views, "demo", True, changed["tr-shown.data"])
    assert moved["tr-kpis.children"] is no_update
    assert moved["tr-kpi-equity.children"] == "1,250.00"
    assert moved["tr-kpi-equity.style"]["color"] == THEMES["light"].profit
    assert moved["tr-orders.rowData"] is no_update

    # no account: dashes in the cards and a hint in the status line
    none = refresh(views, None, True, moved["tr-shown.data"])
    assert none["tr-kpi-equity.children"] == "—"
    assert none["tr-status.children"] == "no account: create one under Accounts"
    assert none["tr-orders.rowData"] == []


def test_cancel_and_modify_an_open_order(session_factory):
    paper = PaperTrading(session_factory)
    account = paper.create_account("m", 100.0)
    save_open_order(session_factory, account.id)
    selected = [{"client_order_id": "o1"}]
    assert order_action(paper, "tr-cancel", [], None, None, None, 0)[0].startswith("select")
    message, css, changed = order_action(paper, "tr-modify", selected, None, "-3", None, 0)
    assert (message, changed) == ("limit_price=-3.0 is invalid: expected a price > 0", no_update)
    assert "text-danger" in css
    assert order_action(paper, "tr-modify", selected, "x", None, None, 0)[0] == (
        "qty: 'x' is not a number"
    )
    assert order_action(paper, "tr-modify", selected, "2", "0.5", None, 4)[2] == 5
    with session_factory() as session:
        found = TradingRepository(session).order("o1")
    assert found is not None
    assert (found[1].quantity, found[1].limit_price) == (2.0, 0.5)
    message, css, changed = order_action(paper, "tr-cancel", selected, None, None, None, 5)
    assert (message, changed) == ("order o1 cancelled", 6)
    assert "cancelled" in order_action(paper, "tr-cancel", selected, None, None, None, 6)[0]


def test_kpi_cards_flag_a_drawdown_near_its_limit(session_factory):
    paper = PaperTrading(session_factory)
    row = paper.create_account("dd", 1_000.0, 0.1)
    near = account_summary(type(row)(**{**row.__dict__, "cash": 910.0}), [])
    kpis = {k.key: k for k in account_kpis(near)}
    assert kpis["drawdown"].text == "9.00% / 10.00%"
    assert kpis["drawdown"].tone == "neg"
    assert kpis["equity"].tone == "neg"
