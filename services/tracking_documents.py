"""The documents TrackingService gives that are made from the live state's figures."""

from __future__ import annotations

from typing import Any


def performance_document(
    account: str, state: dict[str, Any], capital: float | None, preset: str, metrics: bool
) -> dict[str, Any]:
    """TrackingService.performance's document for period ``all`` from the live state's
    figures (LiveAccounts.summary; metrics: empty, as without a capital; left out when not
    asked)."""
    entry: dict[str, Any] = {
        "period": "all", "start": None, "end": None, "fills": state["fills"],
        "trade_summary": state["trade_summary"], "labels": state["labels"],
    }  # fmt: skip
    if metrics:
        entry["metrics"] = {}
    return {
        "account_id": account,
        "strategy_id": None,
        "period": "all",
        "capital": capital,
        "convention": preset,
        "fills": state["fills"],
        "open_positions": state["open_positions"],
        "periods": [entry],
    }


__all__ = ["performance_document"]
