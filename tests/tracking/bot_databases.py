"""Small bot databases made by the tests, with the exact schemas of those projects.

The CREATE TABLE statements are what SQLAlchemy 2 emits on SQLite for the projects' own models
(their column definitions transcribed and run through ``metadata.create_all``):
- freqtrade: freqtrade/persistence/trade_model.py (classes Trade, table ``trades``, and Order,
  table ``orders``), github.com/freqtrade/freqtrade, branch develop at c9ae5e1e (2024-10-24);
  freqtrade/persistence/migrations.py brings older files to this schema on start-up, and
  sets the journal to WAL (set_sqlite_to_wal), as these builders do.
- Hummingbot: hummingbot/model/trade_fill.py (TradeFill) and hummingbot/model/order.py (Order,
  which TradeFill.order_id references), github.com/hummingbot/hummingbot at 2bfaccc4
  (2026-07-30); price, amount and trade_fee_in_quote are SqliteDecimal(6)
  (hummingbot/model/decimal_type_decorator.py: BigInteger holding int(value x 10**6)),
  trade_fee is SQLAlchemy's JSON (text) holding TradeFeeBase.to_json().
"""

from __future__ import annotations

import json
import sqlite3
from decimal import Decimal
from pathlib import Path

FREQTRADE_SCHEMA = """
CREATE TABLE trades (
	id INTEGER NOT NULL,
	exchange VARCHAR(25) NOT NULL,
	pair VARCHAR(25) NOT NULL,
	base_currency VARCHAR(25),
	stake_currency VARCHAR(25),
	is_open BOOLEAN NOT NULL,
	fee_open FLOAT NOT NULL,
	fee_open_cost FLOAT,
	fee_open_currency VARCHAR(25),
	fee_close FLOAT NOT NULL,
	fee_close_cost FLOAT,
	fee_close_currency VARCHAR(25),
	open_rate FLOAT NOT NULL,
	open_rate_requested FLOAT,
	open_trade_value FLOAT,
	close_rate FLOAT,
	close_rate_requested FLOAT,
	realized_profit FLOAT,
	close_profit FLOAT,
	close_profit_abs FLOAT,
	stake_amount FLOAT NOT NULL,
	max_stake_amount FLOAT,
	amount FLOAT NOT NULL,
	amount_requested FLOAT,
	open_date DATETIME NOT NULL,
	close_date DATETIME,
	stop_loss FLOAT,
	stop_loss_pct FLOAT,
	initial_stop_loss FLOAT,
	initial_stop_loss_pct FLOAT,
	is_stop_loss_trailing BOOLEAN NOT NULL,
	max_rate FLOAT,
	min_rate FLOAT,
	exit_reason VARCHAR(255),
	exit_order_status VARCHAR(100),
	strategy VARCHAR(100),
	enter_tag VARCHAR(255),
	timeframe INTEGER,
	trading_mode VARCHAR(7),
	amount_precision FLOAT,
	price_precision FLOAT,
	precision_mode INTEGER,
	precision_mode_price INTEGER,
	contract_size FLOAT,
	leverage FLOAT,
	is_short BOOLEAN NOT NULL,
	liquidation_price FLOAT,
	interest_rate FLOAT NOT NULL,
	funding_fees FLOAT,
	funding_fee_running FLOAT,
	PRIMARY KEY (id)
);
CREATE INDEX ix_trades_is_open ON trades (is_open);
CREATE INDEX ix_trades_pair ON trades (pair);
CREATE TABLE orders (
	id INTEGER NOT NULL,
	ft_trade_id INTEGER NOT NULL,
	ft_order_side VARCHAR(25) NOT NULL,
	ft_pair VARCHAR(25) NOT NULL,
	ft_is_open BOOLEAN NOT NULL,
	ft_amount FLOAT NOT NULL,
	ft_price FLOAT NOT NULL,
	ft_cancel_reason VARCHAR(255),
	order_id VARCHAR(255) NOT NULL,
	status VARCHAR(255),
	symbol VARCHAR(25),
	order_type VARCHAR(50),
	side VARCHAR(25),
	price FLOAT,
	average FLOAT,
	amount FLOAT,
	filled FLOAT,
	remaining FLOAT,
	cost FLOAT,
	stop_price FLOAT,
	order_date DATETIME,
	order_filled_date DATETIME,
	order_update_date DATETIME,
	funding_fee FLOAT,
	ft_fee_base FLOAT,
	ft_order_tag VARCHAR(255),
	PRIMARY KEY (id),
	CONSTRAINT _order_pair_order_id UNIQUE (ft_pair, order_id),
	FOREIGN KEY(ft_trade_id) REFERENCES trades (id)
);
CREATE INDEX ix_orders_ft_is_open ON orders (ft_is_open);
CREATE INDEX ix_orders_ft_trade_id ON orders (ft_trade_id);
CREATE INDEX ix_orders_order_id ON orders (order_id);
"""

HUMMINGBOT_SCHEMA = """
CREATE TABLE "Order" (
	id TEXT NOT NULL,
	config_file_path TEXT NOT NULL,
	strategy TEXT NOT NULL,
	market TEXT NOT NULL,
	symbol TEXT NOT NULL,
	base_asset TEXT NOT NULL,
	quote_asset TEXT NOT NULL,
	creation_timestamp BIGINT NOT NULL,
	order_type TEXT NOT NULL,
	amount BIGINT NOT NULL,
	leverage INTEGER NOT NULL,
	price BIGINT NOT NULL,
	last_status TEXT NOT NULL,
	last_update_timestamp BIGINT NOT NULL,
	exchange_order_id TEXT,
	position TEXT,
	PRIMARY KEY (id)
);
CREATE INDEX o_config_timestamp_index ON "Order" (config_file_path, creation_timestamp);
CREATE INDEX o_market_quote_asset_timestamp_index ON "Order"
	(market, quote_asset, creation_timestamp);
CREATE INDEX o_market_base_asset_timestamp_index ON "Order"
	(market, base_asset, creation_timestamp);
CREATE INDEX o_market_trading_pair_timestamp_index ON "Order" (market, symbol, creation_timestamp);
CREATE TABLE "TradeFill" (
	config_file_path TEXT NOT NULL,
	strategy TEXT NOT NULL,
	market TEXT NOT NULL,
	symbol TEXT NOT NULL,
	base_asset TEXT NOT NULL,
	quote_asset TEXT NOT NULL,
	timestamp BIGINT NOT NULL,
	order_id TEXT NOT NULL,
	trade_type TEXT NOT NULL,
	order_type TEXT NOT NULL,
	price BIGINT NOT NULL,
	amount BIGINT NOT NULL,
	leverage INTEGER NOT NULL,
	trade_fee JSON NOT NULL,
	trade_fee_in_quote BIGINT,
	exchange_trade_id TEXT NOT NULL,
	position TEXT,
	PRIMARY KEY (market, order_id, exchange_trade_id),
	FOREIGN KEY(order_id) REFERENCES "Order" (id)
);
CREATE INDEX tf_market_quote_asset_timestamp_index ON "TradeFill" (market, quote_asset, timestamp);
CREATE INDEX tf_market_trading_pair_timestamp_index ON "TradeFill" (market, symbol, timestamp);
CREATE INDEX tf_market_base_asset_timestamp_index ON "TradeFill" (market, base_asset, timestamp);
CREATE INDEX tf_config_timestamp_index ON "TradeFill" (config_file_path, timestamp);
"""

# what freqtrade's models fill in by default for the NOT NULL columns a test does not set
TRADE_DEFAULTS = {
    "exchange": "binance", "is_open": 0, "fee_open": 0.001, "fee_close": 0.001,
    "open_rate": 1.0, "stake_amount": 100.0, "amount": 1.0,
    "open_date": "2024-01-02 09:00:00.000000", "is_stop_loss_trailing": 0, "is_short": 0,
    "interest_rate": 0.0, "leverage": 1.0, "trading_mode": "SPOT", "strategy": "SampleStrategy",
}  # fmt: skip
ORDER_DEFAULTS = {
    "ft_is_open": 0, "ft_amount": 1.0, "ft_price": 1.0, "status": "closed",
    "order_type": "limit", "order_date": "2024-01-02 09:59:00.000000",
}  # fmt: skip


def _insert(conn: sqlite3.Connection, table: str, row: dict) -> None:
    names = ", ".join(f'"{name}"' for name in row)
    marks = ", ".join("?" for _ in row)
    conn.execute(f'INSERT INTO "{table}" ({names}) VALUES ({marks})', list(row.values()))


def freqtrade_db(path: Path, trades: list[dict], orders: list[dict]) -> Path:
    """A tradesv3.sqlite with these trades and orders (freqtrade's defaults filled in; an
    order's ft_pair, symbol and side follow its trade unless given)."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=wal")
    conn.executescript(FREQTRADE_SCHEMA)
    pairs = {}
    for trade in trades:
        row = {**TRADE_DEFAULTS, **trade}
        pairs[row["id"]] = row["pair"]
        _insert(conn, "trades", row)
    for order in orders:
        pair = pairs.get(order["ft_trade_id"], "BTC/USDT")
        side = order["ft_order_side"]
        row = {"ft_pair": pair, "symbol": pair, "side": side, **ORDER_DEFAULTS, **order}
        _insert(conn, "orders", row)
    conn.commit()
    conn.close()
    return path


def hummingbot_fee(percent="0", flat=(), percent_token=None, fee_type="AddedToCost") -> str:
    """TradeFeeBase.to_json() as SQLAlchemy's JSON type stores it."""
    return json.dumps(
        {
            "fee_type": fee_type,
            "percent": str(percent),
            "percent_token": percent_token,
            "flat_fees": [{"token": token, "amount": str(amount)} for token, amount in flat],
        }
    )


def scaled(value: str | Decimal | None) -> int | None:
    """SqliteDecimal(6)._convert_decimal: int(Decimal(value) * 10**6)."""
    return None if value is None else int(Decimal(value) * 10**6)


def hummingbot_db(path: Path, fills: list[dict]) -> Path:
    """A Hummingbot database with these TradeFill rows (given in real units: price, amount and
    trade_fee_in_quote are stored x 1e6 here) and an Order row for each order id."""
    conn = sqlite3.connect(path)
    conn.executescript(HUMMINGBOT_SCHEMA)
    for fill in fills:
        base, quote = fill.get("symbol", "BTC-USDT").split("-")
        row = {
            "config_file_path": "conf_pure_mm_1.yml", "strategy": "pure_market_making",
            "market": "binance", "symbol": f"{base}-{quote}", "base_asset": base,
            "quote_asset": quote, "order_type": "LIMIT", "leverage": 1, "position": "NIL",
            "trade_fee": hummingbot_fee(), "trade_fee_in_quote": None, **fill,
        }  # fmt: skip
        for name in ("price", "amount", "trade_fee_in_quote"):
            if isinstance(row[name], str | Decimal):
                row[name] = scaled(row[name])
        exists = conn.execute('SELECT 1 FROM "Order" WHERE id = ?', [row["order_id"]]).fetchone()
        if not exists and isinstance(row["order_id"], str):
            _insert(conn, "Order", {
                "id": row["order_id"], "config_file_path": row["config_file_path"],
                "strategy": row["strategy"], "market": row["market"], "symbol": row["symbol"],
                "base_asset": base, "quote_asset": quote, "creation_timestamp": 1704189600000,
                "order_type": "LIMIT", "amount": row["amount"], "leverage": 1,
                "price": row["price"], "last_status": "OrderFilled",
                "last_update_timestamp": 1704189600000,
            })  # fmt: skip
        _insert(conn, "TradeFill", row)
    conn.commit()
    conn.close()
    return path
