"""The bundled strategies (see docs/strategies.md for their rules and confidence formulas).

>>> from strategies.implementations import SmaCrossover
>>> SmaCrossover(fast=5, slow=20).required_indicators()[0].key
'sma(timeperiod=5)'
"""

from strategies.implementations.bands import BollingerReversion, DonchianBreakout
from strategies.implementations.crossovers import EmaCrossover, MacdCross, SmaCrossover
from strategies.implementations.oscillators import RsiReversion

ALL = (SmaCrossover, EmaCrossover, RsiReversion, MacdCross, BollingerReversion, DonchianBreakout)

__all__ = [
    "ALL",
    "BollingerReversion",
    "DonchianBreakout",
    "EmaCrossover",
    "MacdCross",
    "RsiReversion",
    "SmaCrossover",
]
