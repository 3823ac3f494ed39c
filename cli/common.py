"""What every command group shares: the configuration error exit and the UTC time argument."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from config.settings import SettingsError


def configuration_error(exc: SettingsError) -> int:
    """Say what configuration StratLens cannot use, on stderr; the exit code (2)."""
    print(f"configuration error: {exc}", file=sys.stderr)
    return 2


def _utc(text: str) -> pd.Timestamp:
    """The argument type of --start/--end: an ISO date or time, UTC when it names no zone.

    argparse names the type in its error ("invalid _utc value: 'x'"): keep the name."""
    from market.timeframes import as_utc  # pandas only when a time is given

    return as_utc(text)
