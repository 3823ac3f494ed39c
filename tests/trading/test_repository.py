"""TradingRepository on SQLite and PostgreSQL: accounts, deployments, orders by client order
id, immutable fills. A refused request must store nothing: each refusal is committed (not
rolled back) and the tables are read again afterwards."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from database.errors import TradeImmutableError
from database.repositories.trading import (
    FillRow,
    OrderRow,
    TradingRepository,
    TradingStoreError,
)
from database.trading_models import Account, Deployment, Fill, Order

NOW = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def count(factory: sessionmaker[Session], model: type) -> int:
    with factory() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def refused(factory: sessionmaker[Session], action, match: str) -> None:
    """``action(repo)`` raises TradingStoreError naming the problem; what the session holds
    afterwards is committed, so anything the repository wrote before raising would stay."""
    with factory() as session:
        with pytest.raises(TradingStoreError, match=match):
            action(TradingRepository(session))
        session.commit()


def order_row(cid: str, deployment_id: int | None = None, **changes) -> OrderRow:
    values = {
        "client_order_id": cid,
        "symbol": "SP500",
        "side": "buy",
        "order_type": "limit",
        "time_in_force": "GTC",
        "status": "new",
        "purpose": "manual",
        "arrival_time": NOW,
        "updated_at": NOW,
        "deployment_id": deployment_id,
        "quantity": 2.0,
        "limit_price": 100.0,
        "decision_price": 101.0,
        "arrival_price": 101.0,
    }
    values.update(changes)
    return OrderRow(**values)


def fill_row(cid: str, seq: int, quantity: float = 1.0, price: float = 100.0) -> FillRow:
    return FillRow(
        f"{cid}#{seq}",
        cid,
        "SP500",
        "buy",
        price,
        quantity,
        0.1,
        0.0,
        NOW + timedelta(minutes=seq),
        seq,
    )


@pytest.fixture
def account_id(session_factory: sessionmaker[Session]) -> int:
    with session_factory.begin() as session:
        return TradingRepository(session).create_account("demo", 10_000.0, NOW, 0.2).id


# -- accounts --------------------------------------------------------------------------------
def test_an_account_is_created_and_read_back(session_factory, account_id):
    with session_factory() as session:
        repo = TradingRepository(session)
        row = repo.account("demo")
        assert row is not None
        assert row.id == account_id
        assert (row.cash, row.starting_cash, row.peak_equity) == (10_000.0, 10_000.0, 10_000.0)
        assert (row.max_drawdown_pct, row.status, row.venue) == (0.2, "active", "paper")
        assert repo.account_by_id(account_id) == row
        assert repo.accounts() == [row]
        assert repo.account("nobody") is None


def test_a_duplicate_account_name_is_refused_and_nothing_stored(session_factory, account_id):
    refused(
        session_factory,
        lambda repo: repo.create_account("demo", 500.0, NOW),
        "account 'demo' exists already",
    )
    assert count(session_factory, Account) == 1
    with session_factory() as session:
        assert TradingRepository(session).account("demo").cash == 10_000.0  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("name", "cash", "drawdown", "match"),
    [
        ("a", 0.0, None, r"cash=0.0 is invalid: expected an amount > 0"),
        ("a", -5.0, None, r"cash=-5.0 is invalid"),
        ("a", float("inf"), None, r"cash=inf is invalid"),
        ("a", float("nan"), None, r"cash=nan is invalid"),
        ("a", "100", None, r"cash='100' is invalid"),
        ("", 100.0, None, r"account name='' is invalid"),
        ("a", 100.0, 1.5, r"max_drawdown_pct=1.5 is invalid"),
    ],
)
def test_a_bad_account_is_refused_and_nothing_stored(session_factory, name, cash, drawdown, match):
    refused(session_factory, lambda repo: repo.create_account(name, cash, NOW, drawdown), match)
    assert count(session_factory, Account) == 0


def test_save_account_writes_its_books(session_factory, account_id):
    with session_factory.begin() as session:
        repo = TradingRepository(session)
        row = repo.account_by_id(account_id)
        assert row is not None
        from dataclasses import replace

        repo.save_account(
            replace(row, cash=9_000.0, fees=3.0, status="halted", halt_reason="drawdown"), NOW
        )
    with session_factory() as session:
        row = TradingRepository(session).account_by_id(account_id)
    assert row is not None
    assert (row.cash, row.fees, row.status, row.halt_reason) == (9_000.0, 3.0, "halted", "drawdown")


# -- deployments -----------------------------------------------------------------------------
def deploy(repo: TradingRepository, name: str, account_id: int):
    return repo.create_deployment(
        name, account_id, "sma_crossover", {"fast": 10}, "SP500", "1d", {"sizing": "all_in"}, NOW
    )


def test_deployments_duplicate_name_and_unknown_account_refused(session_factory, account_id):
    with session_factory.begin() as session:
        row = deploy(TradingRepository(session), "d1", account_id)
    assert (row.status, row.strategy_params, row.settings) == (
        "stopped",
        {"fast": 10},
        {"sizing": "all_in"},
    )
    refused(session_factory, lambda repo: deploy(repo, "d1", account_id), "'d1' exists already")
    refused(session_factory, lambda repo: deploy(repo, "d2", 999_999), "no account with id 999999")
    refused(session_factory, lambda repo: deploy(repo, " ", account_id), "name=' ' is invalid")
    assert count(session_factory, Deployment) == 1


def test_update_deployment_checks_its_fields(session_factory, account_id):
    with session_factory.begin() as session:
        deployment_id = deploy(TradingRepository(session), "d1", account_id).id
    refused(
        session_factory,
        lambda repo: repo.update_deployment(deployment_id, NOW, status="flying"),
        "status='flying' is invalid",
    )
    refused(
        session_factory,
        lambda repo: repo.update_deployment(deployment_id, NOW, symbol="X"),
        r"cannot update deployment field\(s\) \['symbol'\]",
    )
    with session_factory.begin() as session:
        repo = TradingRepository(session)
        repo.update_deployment(deployment_id, NOW, status="running")
        repo.save_states([(deployment_id, 1234, 7, {"paper_side": 1})], NOW)
    with session_factory() as session:
        row = TradingRepository(session).deployment("d1")
    assert row is not None
    stored = (row.status, row.last_bar_ts, row.bar_index, dict(row.state))
    assert stored == ("running", 1234, 7, {"paper_side": 1})
    # a bar without news: the counters move, the state stays as written
    with session_factory.begin() as session:
        TradingRepository(session).save_states([(deployment_id, 1300, 8, None)], NOW)
    with session_factory() as session:
        row = TradingRepository(session).deployment("d1")
    assert row is not None
    assert (row.last_bar_ts, row.bar_index, dict(row.state)) == (1300, 8, {"paper_side": 1})


def test_remove_keeps_a_deployment_with_orders_as_removed(session_factory, account_id):
    with session_factory.begin() as session:
        repo = TradingRepository(session)
        used = deploy(repo, "used", account_id)
        unused = deploy(repo, "unused", account_id)
        repo.save_orders(account_id, [order_row("u-1", used.id)])
    with session_factory.begin() as session:
        repo = TradingRepository(session)
        assert repo.remove_deployment(used.id, NOW) == "removed (its orders and fills are kept)"
        assert repo.remove_deployment(unused.id, NOW) == "deleted"
    with session_factory() as session:
        repo = TradingRepository(session)
        assert repo.deployment("unused") is None
        kept = repo.deployment("used")
        assert kept is not None
        assert kept.status == "removed"
        assert repo.deployments() == []  # removed ones are not listed
        assert [d.name for d in repo.deployments(status="removed")] == ["used"]
        assert [o.client_order_id for o in repo.orders(account_id)] == ["u-1"]


# -- orders and fills -----------------------------------------------------------------------
def test_save_orders_inserts_new_and_updates_known_ones_by_client_order_id(
    session_factory, account_id
):
    with session_factory.begin() as session:
        ids = TradingRepository(session).save_orders(
            account_id, [order_row("c-1"), order_row("c-2", extra={"note": 1})]
        )
    assert set(ids) == {"c-1", "c-2"}
    later = NOW + timedelta(hours=1)
    with session_factory.begin() as session:
        again = TradingRepository(session).save_orders(
            account_id,
            [
                order_row(
                    "c-1",
                    status="partially_filled",
                    filled_quantity=1.0,
                    average_price=99.5,
                    fees=0.2,
                    updated_at=later,
                    quantity=3.0,
                ),
                order_row("c-3", side="sell", order_type="market", limit_price=None),
            ],
        )
    assert again["c-1"] == ids["c-1"]  # updated in place, not inserted twice
    assert again["c-3"] not in ids.values()
    with session_factory() as session:
        repo = TradingRepository(session)
        rows = {o.client_order_id: o for o in repo.orders(account_id)}
        assert list(rows) == ["c-1", "c-2", "c-3"]
        first = rows["c-1"]
        assert (first.status, first.filled_quantity, first.average_price, first.quantity) == (
            "partially_filled",
            1.0,
            99.5,
            3.0,
        )
        assert first.updated_at == later
        assert first.arrival_time == NOW
        assert dict(rows["c-2"].extra) == {"note": 1}
        assert [o.client_order_id for o in repo.orders(account_id, open_only=True)] == [
            "c-1",
            "c-2",
            "c-3",
        ]
        found = repo.order("c-3")
        assert found is not None
        assert found[0] == account_id
        assert found[1].side == "sell"
        assert repo.order("nope") is None
    assert count(session_factory, Order) == 3


def test_fills_are_stored_and_immutable(session_factory, account_id):
    with session_factory.begin() as session:
        repo = TradingRepository(session)
        repo.save_orders(account_id, [order_row("f-1")])
        assert repo.add_fills(account_id, [fill_row("f-1", 1), fill_row("f-1", 2, 1.0, 99.0)]) == 2
    with session_factory() as session:
        stored = TradingRepository(session).fills(account_id)
    assert [(f.fill_id, f.client_order_id, f.price, f.seq) for f in stored] == [
        ("f-1#1", "f-1", 100.0, 1),
        ("f-1#2", "f-1", 99.0, 2),
    ]
    with session_factory() as session:
        fill = session.scalars(select(Fill).where(Fill.fill_id == "f-1#1")).one()
        fill.price = 1.0
        with pytest.raises(TradeImmutableError, match="fill 'f-1#1' is stored and cannot be"):
            session.flush()
        session.rollback()
    with session_factory() as session:
        fill = session.scalars(select(Fill).where(Fill.fill_id == "f-1#2")).one()
        session.delete(fill)
        with pytest.raises(TradeImmutableError, match="fill 'f-1#2' is stored and cannot be"):
            session.flush()
        session.rollback()
    with session_factory() as session:
        prices = [f.price for f in TradingRepository(session).fills(account_id)]
    assert prices == [100.0, 99.0]


def test_fills_of_an_unknown_order_are_refused_and_nothing_stored(session_factory, account_id):
    with session_factory.begin() as session:
        TradingRepository(session).save_orders(account_id, [order_row("known")])
    refused(
        session_factory,
        lambda repo: repo.add_fills(account_id, [fill_row("known", 1), fill_row("ghost", 1)]),
        r"fills of unknown orders \['ghost'\]: store the orders first",
    )
    assert count(session_factory, Fill) == 0


def test_positions_insert_then_update(session_factory, account_id):
    from database.repositories.trading import PositionRow

    with session_factory.begin() as session:
        TradingRepository(session).save_positions(
            account_id, [PositionRow("SP500", 2.0, 100.0, 0.0, 101.0, NOW)]
        )
    with session_factory.begin() as session:
        TradingRepository(session).save_positions(
            account_id, [PositionRow("SP500", -1.0, 105.0, 10.0, 104.0, NOW)]
        )
    with session_factory() as session:
        rows = TradingRepository(session).positions(account_id)
    assert [(p.symbol, p.quantity, p.average_price, p.realised_pnl) for p in rows] == [
        ("SP500", -1.0, 105.0, 10.0)
    ]


def test_states_and_advanced_deployments_are_saved_in_one_call(session_factory, account_id):
    with session_factory.begin() as session:
        repo = TradingRepository(session)
        first, second = deploy(repo, "a1", account_id).id, deploy(repo, "a2", account_id).id
        repo.save_states([(first, 1000, 3, {"k": 1}), (second, 1000, 5, {"k": 2})], NOW)
    with session_factory.begin() as session:  # the first moved on, the second changed state
        TradingRepository(session).save_states([(second, 1060, 6, None)], NOW, [(first, 1060)])
    with session_factory.begin() as session:
        TradingRepository(session).save_states([], NOW, [(first, 1120), (second, 1120)])
    with session_factory() as session:
        rows = {r.name: r for r in TradingRepository(session).deployments()}
    assert (rows["a1"].last_bar_ts, rows["a1"].bar_index, dict(rows["a1"].state)) == (
        1120, 5, {"k": 1},
    )  # fmt: skip
    assert (rows["a2"].last_bar_ts, rows["a2"].bar_index, dict(rows["a2"].state)) == (
        1120, 7, {"k": 2},
    )  # fmt: skip
