"""write_batch (the runner's and the replay's one-round-trip write) stores exactly what the
repository's kind-by-kind methods store, on SQLite and PostgreSQL: the same bars written both
ways into two accounts, every stored row compared. The orders, fills and positions are two
implementations (the repository's upserts return ids); the accounts' and deployments' rows
the repository writes through write_batch too (tests/trading/test_repository.py checks
what they store)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from database.repositories.trading import TradingRepository
from database.repositories.trading_batch import TradingBatch, write_batch
from database.trading_records import AccountRow, FillRow, OrderRow, PositionRow

NOW = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def bars(prefix: str, deployment: int) -> list[dict]:
    """Three bars' rows of one account (client order ids and fill ids start with ``prefix``)."""
    t1, t2, t3 = NOW, NOW + timedelta(minutes=1), NOW + timedelta(minutes=2)
    entry = OrderRow(
        f"{prefix}-entry", "SP500", "buy", "market", "GTC", "new", "entry", t1, t1,
        deployment_id=deployment, decision_time=pd.Timestamp(t1), decision_price=100.5,
        arrival_price=100.5, extra={"costs": {"commission_pct": 0.001}, "fills": 0},
    )  # fmt: skip
    stop = OrderRow(
        f"{prefix}-stop", "SP500", "sell", "stop", "GTC", "new", "protect", t2, t2,
        deployment_id=deployment, quantity=3.0, stop_price=95.0, trail_pct=0.02,
        reduce_only=True, oco_group=f"{prefix}-oco", extra={"anchor": 101.0},
    )  # fmt: skip
    filled = replace(
        entry, status="filled", quantity=3.0, filled_quantity=3.0, average_price=101.0,
        fees=0.303, updated_at=t2, extra={"costs": {"commission_pct": 0.001}, "fills": 1},
    )  # fmt: skip
    fill = FillRow(
        f"{prefix}-f1", f"{prefix}-entry", "SP500", "buy", 101.0, 3.0, 0.303, 0.0, t2, 1,
        deployment, bar_ts=int(t2.timestamp() * 1000),
    )  # fmt: skip
    stopped = replace(stop, status="filled", filled_quantity=3.0, average_price=95.0, updated_at=t3)
    exit_fill = FillRow(
        f"{prefix}-f2", f"{prefix}-stop", "SP500", "sell", 95.0, 3.0, 0.285, -18.0, t3, 1,
        deployment, bar_ts=int(t3.timestamp() * 1000),
    )  # fmt: skip
    return [
        {"orders": [entry], "fills": [], "positions": [], "cash": 10_000.0,
         "states": [(1000, 0, {"position": {"side": 0}})], "advanced": [], "now": t1},
        {"orders": [entry, filled, stop], "fills": [fill],
         "positions": [PositionRow("SP500", 3.0, 101.0, 0.0, 101.0, t2)], "cash": 9696.697,
         "states": [(1060, 1, {"position": {"side": 1}})], "advanced": [], "now": t2},
        {"orders": [stopped], "fills": [exit_fill],
         "positions": [PositionRow("SP500", 0.0, 0.0, -18.0, 95.0, t3)], "cash": 9981.412,
         "states": [], "advanced": [1120], "now": t3},
    ]  # fmt: skip


def test_write_batch_stores_what_the_repository_methods_store(session_factory):
    with session_factory.begin() as session:
        repo = TradingRepository(session)
        ids = {}
        for name in ("old", "new"):
            account = repo.create_account(name, 10_000.0, NOW, 0.2)
            deployment = repo.create_deployment(
                f"d-{name}", account.id, "sma_crossover", {}, "SP500", "1m", {}, NOW
            )
            ids[name] = (account, deployment.id)
    for step, (old, new) in enumerate(
        zip(bars("old", ids["old"][1]), bars("new", ids["new"][1]), strict=True)
    ):
        with session_factory.begin() as session:  # kind by kind
            repo = TradingRepository(session)
            account, deployment = ids["old"]
            repo.save_orders(account.id, old["orders"])
            repo.add_fills(account.id, old["fills"])
            repo.save_positions(account.id, old["positions"])
            repo.save_accounts([replace(account, cash=old["cash"])], old["now"])
            repo.save_states(
                [(deployment, ts, bar, st) for ts, bar, st in old["states"]], old["now"],
                [(deployment, ts) for ts in old["advanced"]],
            )  # fmt: skip
        with session_factory.begin() as session:  # at once
            account, deployment = ids["new"]
            write_batch(
                session,
                TradingBatch(
                    new["now"],
                    orders=[(account.id, o) for o in new["orders"]],
                    fills=[(account.id, f) for f in new["fills"]],
                    positions=[(account.id, p) for p in new["positions"]],
                    accounts=[replace(account, cash=new["cash"])],
                    states=[(deployment, ts, bar, st) for ts, bar, st in new["states"]],
                    advanced=[(deployment, ts) for ts in new["advanced"]],
                    no_flush_wait=step == 1,
                ),
            )
    with session_factory() as session:
        repo = TradingRepository(session)
        stored = {name: _stored(repo, account, name) for name, (account, _) in ids.items()}
    assert len(stored["old"]["orders"]) == 2  # something to compare
    assert len(stored["old"]["fills"]) == 2
    for what in ("orders", "fills", "positions", "account", "deployment"):
        assert stored["new"][what] == stored["old"][what], what


def _stored(repo: TradingRepository, account: AccountRow, name: str) -> dict:
    """Every row of the account, its own names and ids replaced by placeholders."""

    def plain(value):
        return value.replace(name, "X") if isinstance(value, str) else value

    orders = []
    for o in repo.orders(account.id):
        values = vars(replace(o, id=None, deployment_id=None, extra={}))
        orders.append((*(plain(v) for v in values.values()), repr(o.extra).replace(name, "X")))
    fills = [tuple(plain(v) for v in vars(f).values()) for f in repo.fills(account.id)]
    deployment = repo.deployment(f"d-{name}")
    assert deployment is not None
    row = repo.account_by_id(account.id)
    assert row is not None
    return {
        "orders": orders,
        "fills": [f[:10] + f[11:] for f in fills],  # deployment ids differ
        "positions": [tuple(vars(p).values()) for p in repo.positions(account.id)],
        "account": (row.cash, row.realised_pnl, row.fees, row.peak_equity, row.status),
        "deployment": (deployment.last_bar_ts, deployment.bar_index, dict(deployment.state)),
    }


def test_a_fill_of_an_unknown_order_is_refused_and_nothing_stored(session_factory):
    with session_factory.begin() as session:
        account = TradingRepository(session).create_account("acc", 10_000.0, NOW)
    fill = FillRow("f", "nobody", "SP500", "buy", 100.0, 1.0, 0.0, 0.0, NOW, 1)
    with pytest.raises(IntegrityError), session_factory.begin() as session:
        write_batch(session, TradingBatch(NOW, fills=[(account.id, fill)]))
    with session_factory() as session:
        assert TradingRepository(session).fills(account.id) == []


def test_no_flush_wait_relaxes_this_transaction_only_on_postgresql(session_factory):
    with session_factory.begin() as session:
        account = TradingRepository(session).create_account("acc", 10_000.0, NOW)
    with session_factory.begin() as session:
        write_batch(session, TradingBatch(NOW, accounts=[account], no_flush_wait=True))
        if session.get_bind().dialect.name != "postgresql":
            return  # SQLite: nothing to relax
        assert session.execute(text("SHOW synchronous_commit")).scalar() == "off"
    with session_factory() as session:
        assert session.execute(text("SHOW synchronous_commit")).scalar() == "on"


def test_signals_in_the_batch_are_stored_as_the_signal_repository_stores_them(session_factory):
    """On PostgreSQL the batch's statements insert them (json_to_recordset), past
    PG_SIGNALS_IN_STATEMENT the repository's binary COPY does; SQLite: the repository."""
    from database.records import SignalRecord
    from database.repositories.signals import SignalRepository
    from database.repositories.strategies import StrategyRepository

    with session_factory.begin() as session:
        runs = StrategyRepository(session).runs
        config = {"fast": 5}
        run_ids = {
            name: runs.create("sma_crossover", config, "SP500", "1m", "paper", started_at=NOW).id
            for name in ("old", "new")
        }

    def signals(run_id: int) -> list[SignalRecord]:
        # {}: NULL without a run, "{}" with one
        configs = [{"fast": 5}, {}, {"fast": 5}, {"fast": 6, "x": 0.1}, {}]
        out = []
        for k in range(5):
            out.append(
                SignalRecord(
                    strategy_name="sma_crossover", symbol="SP500", timeframe="1m",
                    timestamp=NOW + timedelta(minutes=k, microseconds=7),
                    signal_type="entry_long" if k % 2 else "exit_long", price=100.0 + k / 3,
                    confidence=0.1 * k,
                    strategy_config=configs[k],
                    metadata={"sma": 1 / 3 + k, "note": 'a"b\\n'} if k != 2 else {},
                    run_id=run_id if k != 4 else None,
                )
            )  # fmt: skip
        return out

    with session_factory.begin() as session:
        SignalRepository(session).add_many(signals(run_ids["old"]))
    with session_factory.begin() as session:
        write_batch(session, TradingBatch(NOW, signals=signals(run_ids["new"])))
    with session_factory() as session:
        rows = session.execute(
            text(
                "SELECT strategy_name, symbol, timeframe, timestamp, signal_type, price,"
                " confidence, CAST(strategy_config AS TEXT), CAST(signal_metadata AS TEXT),"
                " run_id, signal_metadata_values FROM strategy_signals ORDER BY id"
            )
        ).all()
    old, new = rows[:5], rows[5:]
    assert len(new) == 5
    swap = {run_ids["old"]: "run", run_ids["new"]: "run", None: None}
    assert [(*r[:9], swap[r[9]], r[10]) for r in new] == [(*r[:9], swap[r[9]], r[10]) for r in old]


def test_a_float_that_is_not_finite_is_stored_as_the_repository_stores_it(session_factory):
    with session_factory.begin() as session:
        repo = TradingRepository(session)
        accounts = [repo.create_account(name, 10_000.0, NOW) for name in ("old", "new")]
    position = PositionRow("SP500", 1.0, 100.0, float("-inf"), float("nan"), NOW)
    with session_factory.begin() as session:
        TradingRepository(session).save_positions(accounts[0].id, [position])
    with session_factory.begin() as session:
        write_batch(session, TradingBatch(NOW, positions=[(accounts[1].id, position)]))
    with session_factory() as session:
        repo = TradingRepository(session)
        stored = [repo.positions(a.id)[0] for a in accounts]
    assert stored[0].realised_pnl == float("-inf")
    assert repr(stored[1]) == repr(stored[0])  # NaN: NULL on SQLite, NaN on PostgreSQL


def _odd_trades(account: str) -> list:
    """Trades whose values a text format may mangle: tabs, line breaks, backslashes, quotes,
    non-ASCII, NULLs, a context of the annotator's shape and one of a source's own."""
    from analytics.market_context import CONTEXT_KEYS
    from database.records import TradeRecord

    full = dict.fromkeys(CONTEXT_KEYS, None) | {"close": 101.25, "atr": 1e-300, "trend": "up"}
    contexts = [full | {"venue": "paper", "note": 'a\tb\nc\\d"é'}, {}, {"_compact": 3}]
    return [
        TradeRecord(
            trade_id=f"t{k}\t\\{'ü' * k}", account_id=account, strategy_id="s\nx",
            symbol="SP500", side="buy" if k % 2 else "sell", price=100.0 + k / 3, volume=0.1 * 3,
            execution_time=NOW + timedelta(microseconds=k * 7), commission=k * 1e-17,
            market_context=contexts[k % 3], labels=("trend", "é\t") if k % 2 else (),
            pnl=None if k == 0 else -k / 7, cumulative_pnl=None if k == 0 else 5e-324,
            source=None if k == 1 else "paper", order_id=None if k == 2 else f"o{k}",
        )
        for k in range(5)
    ]  # fmt: skip


def test_trades_in_the_batch_are_stored_as_the_trade_repository_stores_them(session_factory):
    """PostgreSQL: the trades of a batch (the runner's candle) store what
    TradeRepository.add_many's COPY stores, in the order given; the guard refuses the whole
    batch (nothing of it written) when an account's newest stored row is not the one given."""
    from sqlalchemy.exc import DBAPIError

    from database.repositories.trades import TradeRepository
    from database.repositories.trading_batch import stale_trades

    if session_factory.kw["bind"].dialect.name != "postgresql":
        with session_factory.begin() as session, pytest.raises(ValueError, match="PostgreSQL"):
            write_batch(session, TradingBatch(NOW, trades=_odd_trades("b")))
        return
    with session_factory.begin() as session:
        TradeRepository(session).add_many(_odd_trades("copy"), checked=True)
        account = TradingRepository(session).create_account("acc", 10_000.0, NOW)
    with session_factory.begin() as session:
        newest = write_batch(
            session,
            TradingBatch(NOW, accounts=[account], trades=_odd_trades("batch"),
                         trades_newest={"batch": 0}),
        )  # fmt: skip
    columns = (
        "trade_id, strategy_id, run_id, symbol, side, price, volume, commission,"
        " execution_time, market_context::text, labels::text, pnl, cumulative_pnl, source,"
        " order_id"
    )
    with session_factory() as session:
        rows = {
            name: session.execute(
                text(f"SELECT {columns} FROM trades WHERE account_id = :a ORDER BY id"),
                {"a": name},
            ).all()
            for name in ("copy", "batch")
        }
        last = session.execute(text("SELECT max(id) FROM trades WHERE account_id = 'batch'"))
        assert newest == {"batch": last.scalar()}
    assert len(rows["batch"]) == 5
    assert rows["batch"] == rows["copy"]

    # another writer's row since: nothing of the batch is written
    for stale in (0, newest["batch"] - 1):
        with pytest.raises(DBAPIError) as refused, session_factory.begin() as session:
            write_batch(
                session,
                TradingBatch(NOW, accounts=[replace(account, cash=1.0)],
                             trades=_odd_trades("batch")[:1], trades_newest={"batch": stale}),
            )  # fmt: skip
        assert stale_trades(refused.value)
    with session_factory() as session:
        assert TradingRepository(session).account_by_id(account.id).cash == 10_000.0
        assert len(TradeRepository(session).list(account_id="batch")) == 5
