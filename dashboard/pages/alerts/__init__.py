"""The Alerts page (/alerts) and the toasts every page shows when a new alert is stored.

>>> register_callbacks(app, services.alerts)
>>> shell(..., alerts_page=layout(services.alerts), toasts=toast_area(services.alerts.latest_id()))

tables.py     the history grid's rows (plain values, newest first), columns and look, the
              rules (threshold, cooldown, enabled, Save), the delivery failures, the toasts:
              plain functions
layout.py     the page's three cards; the history is an AG Grid ("al-history"), its severity
              badge and Acknowledge button drawn by assets/alerts_grid.js
callbacks.py  the toasts' poll, acknowledge, refreshes, a rule's save (checked by the
              repository: a bad value is named in the feedback and nothing is stored)

The toasts: every page holds ``al-poll`` (an interval, 2 s) and ``al-seen`` (the newest alert
id the page has seen, set when the page loads); each tick asks for alerts with a larger id (one
index range on alerts.id, usually empty: then nothing is sent back). While the page is shown
a new alert, an acknowledgement or the theme refreshes the history grid: its rows only when
they changed (a hash kept in ``al-history-shown``), its options only with the theme; hidden,
nothing is read or sent. Acknowledge (a button in the grid's row, which sets the grid's
cellRendererData) and Save write to the database: :data:`WRITE_OUTPUTS` names them for the
server's write guard. Ids start with "al-".
"""

from dashboard.pages.alerts.callbacks import (
    ACK_OUTPUT,
    ALERTS_PATH,
    RULE_OUTPUT,
    acknowledge_clicked,
    history_update,
    new_toasts,
    register_callbacks,
    save_rule,
)
from dashboard.pages.alerts.layout import layout
from dashboard.pages.alerts.tables import toast_area

WRITE_OUTPUTS: tuple[str, ...] = (ACK_OUTPUT, RULE_OUTPUT)

__all__ = [
    "ALERTS_PATH",
    "WRITE_OUTPUTS",
    "acknowledge_clicked",
    "history_update",
    "layout",
    "new_toasts",
    "register_callbacks",
    "save_rule",
    "toast_area",
]
