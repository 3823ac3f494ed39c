"""The compiled bar loop of :mod:`analytics.backtest` (numba; see docs/backtest.md, "Speed").

Everything here is a pure function of numpy arrays and plain numbers: no closures, no Python
objects, so numba compiles it to machine code. ``cache=True`` stores the compiled code in
``analytics/__pycache__`` (``*.nbi``/``*.nbc``): only the first process after an edit of this
file compiles (a few seconds); later ones load it in milliseconds. Without numba the same
functions run as plain Python (slow, same results). :mod:`analytics._kernel_aot` compiles
:func:`simulate_packed` ahead of time into an extension module, so that a fresh process pays
neither numba's import nor its first call; this file is its source.

``p`` is a :class:`analytics._kernel_layout.KernelParams` (a NamedTuple of plain numbers).
"""

from __future__ import annotations

import numpy as np

from analytics._kernel_layout import (
    _COMMISSION,
    _ENTRY,
    _ENTRY_BAR,
    _EXIT,
    _EXIT_BAR,
    _INF,
    _MAE,
    _MFE,
    _REASON,
    _SIZE,
    DRAWDOWN_HALT,
    END,
    SIGNAL,
    STOP_LOSS,
    TAKE_PROFIT,
    TRAILING_STOP,
    KernelParams,
)

try:
    from numba import njit
except ImportError:  # pragma: no cover - numba is in requirements.txt

    def njit(*args, **kwargs):  # type: ignore[no-redef]
        """Without numba: leave the function as plain Python."""
        if args and callable(args[0]):
            return args[0]
        return lambda f: f


@njit(cache=True)
def half_kelly_window(returns: np.ndarray, start: int, stop: int) -> float:
    """Half-Kelly fraction of ``returns[start:stop]`` (see :func:`analytics.backtest.half_kelly`).

    Sums run in order, as Python's ``sum`` over a list does.
    """
    n_win = n_loss = 0
    sum_win = sum_loss = 0.0
    for k in range(start, stop):
        r = returns[k]
        if r > 0:
            n_win += 1
            sum_win += r
        else:
            n_loss += 1
            sum_loss += -r
    if n_win == 0:
        return 0.0
    if n_loss == 0 or sum_loss == 0:
        return 0.5
    w = n_win / (n_win + n_loss)
    ratio = (sum_win / n_win) / (sum_loss / n_loss)
    x = 0.5 * (w - (1 - w) / ratio)
    x = x if x > 0.0 else 0.0  # Python's max(0.0, x): the first argument unless x is larger
    return x if x < 1.0 else 1.0  # min(1.0, x)


@njit(cache=True)
def _fill_price(base: float, buy: bool, opening: bool, p) -> float:
    if p.compat:
        # backtesting.py: the whole spread on entry, exits at the raw price
        if opening:
            return base * (1 + (p.spread if buy else -p.spread))
        return base
    half_cost = p.spread / 2 + p.slippage
    return base * (1 + half_cost) if buy else base * (1 - half_cost)


@njit(cache=True)
def _close(
    trades, n_trades, history, n_history, bar, base, reason,
    side, size, entry_price, entry_comm, entry_bar, seen_lo, seen_hi, p,
):  # fmt: skip
    """Write the closing trade at ``trades[n_trades]`` and its return at
    ``history[n_history]``; returns the cash change."""
    price = _fill_price(base, side < 0, False, p)
    commission = p.commission_fixed + abs(size) * price * p.commission_rel
    delta = size * (price - entry_price) - commission
    total = commission + entry_comm
    sign = 1.0 if side > 0 else -1.0
    lo_seen = min(seen_lo, base)
    hi_seen = max(seen_hi, base)
    adverse = (lo_seen if side > 0 else hi_seen) / entry_price - 1
    favourable = (hi_seen if side > 0 else lo_seen) / entry_price - 1
    row = trades[n_trades]
    row[_ENTRY_BAR] = entry_bar
    row[_EXIT_BAR] = bar
    row[_SIZE] = size
    row[_ENTRY] = entry_price
    row[_EXIT] = price
    row[_COMMISSION] = total
    row[_REASON] = reason
    mae, mfe = sign * adverse, sign * favourable
    row[_MAE] = mae if mae < 0.0 else 0.0  # Python's min(0.0, mae), signed zeros included
    row[_MFE] = mfe if mfe > 0.0 else 0.0
    history[n_history] = sign * (price / entry_price - 1) - total / (abs(size) * entry_price)
    return delta


@njit(cache=True)
def _open_units(base: float, new_side: int, cash: float, history, n_history, p):
    """(units, fill price) of an entry on a flat account (equity = cash); units <= 0: none."""
    price = _fill_price(base, new_side > 0, True, p)
    fixed, rel = p.commission_fixed, p.commission_rel
    equity_now = cash
    if p.sizing == 2:  # quantity
        units = p.size
    else:
        fraction = p.size
        if p.sizing == 3 and n_history >= p.kelly_min_trades:
            fraction = half_kelly_window(history, max(0, n_history - p.kelly_window), n_history)
        if fraction <= 0:
            units = 0.0
        elif p.compat:
            # backtesting.py: whole units of (margin x fraction) // (price + commission/unit)
            per_unit = price + (fixed + fraction * base * rel) / fraction
            units = (max(0.0, equity_now) * 1.0 * fraction) // per_unit
        else:
            units = (fraction * equity_now - fixed) / (price * (1 + rel))
    if p.whole_units:
        units = np.floor(units)
    if p.compat and units * (price + (fixed + units * base * rel) / max(units, 1.0)) > max(
        0.0, equity_now
    ):
        units = 0.0  # backtesting.py cancels an order the margin cannot cover
    return units, price


@njit(cache=True)
def _decide(el: bool, xl: bool, es: bool, xs: bool, held: int, p):
    """(close now, side to open) from one bar's signals and the side held (paper included)."""
    want_long = el and not xl and p.long_ok
    want_short = es and not xs and p.short_ok
    if want_long and want_short:
        want_long = want_short = False  # contradictory: stay put
    close_now = (held > 0 and (xl or es)) or (held < 0 and (xs or el))
    if p.compat and ((held > 0 and want_long) or (held < 0 and want_short)):
        close_now = True  # backtesting.py's SmaCross closes and buys again
    open_side = 0
    if (0 if close_now else held) == 0:
        open_side = 1 if want_long else (-1 if want_short else 0)
    return close_now, open_side


@njit(cache=True)
def stop_exit(side: int, entry: float, anchor: float, o: float, h: float, low: float, p):
    """(raw exit price, reason) if a stop or target triggers in this bar, else (-1, SIGNAL).

    The trailing stop trails the best price seen up to this bar's open: the bar's own
    extreme might come after its other extreme, so it moves the stop only from the next bar.
    """
    if side > 0:
        sl = entry * (1 - p.stop_loss) if p.stop_loss != 0 else -_INF
        tr = max(anchor, o) * (1 - p.trailing_stop) if p.trailing_stop != 0 else -_INF
        stop, reason = (sl, STOP_LOSS) if sl >= tr else (tr, TRAILING_STOP)
        tp = entry * (1 + p.take_profit) if p.take_profit != 0 else _INF
        if o <= stop:
            return o, reason  # gapped through: filled at the open, worse than the stop
        if o >= tp:
            return o, TAKE_PROFIT
        if low <= stop:  # pessimistic: checked before the target
            return stop, reason
        if h >= tp:
            return tp, TAKE_PROFIT
        return -1.0, SIGNAL
    sl = entry * (1 + p.stop_loss) if p.stop_loss != 0 else _INF
    tr = min(anchor, o) * (1 + p.trailing_stop) if p.trailing_stop != 0 else _INF
    stop, reason = (sl, STOP_LOSS) if sl <= tr else (tr, TRAILING_STOP)
    tp = entry * (1 - p.take_profit) if p.take_profit != 0 else -_INF
    if o >= stop:
        return o, reason
    if o <= tp:
        return o, TAKE_PROFIT
    if h >= stop:
        return stop, reason
    if low <= tp:
        return tp, TAKE_PROFIT
    return -1.0, SIGNAL


# inline="always": numba pastes it into both call sites, as fast as two written copies (a real
# call was 5-10% slower per bar with fill="close"); callers skip it on bars with nothing to do
# (passing the state through it on every bar cost 40-80%)
@njit(cache=True, inline="always")
def _act(
    trades, n_trades, history, n_history, bar, base, close_now, open_side, reason,
    cash, size, side, entry_price, entry_comm, entry_bar, seen_lo, seen_hi, trail,
    paper_side, paper_entry, p,
):  # fmt: skip
    """One fill point of bar ``bar`` at price ``base`` (the next open, or this close): close
    the position and the paper position when ``close_now``, then open ``open_side`` (if not
    0) on a flat account. Returns the state after it, in the order of the arguments:
    (n_trades, n_history, cash, size, side, entry_price, entry_comm, entry_bar, seen_lo,
    seen_hi, trail, paper_side, paper_entry)."""
    if close_now and side != 0:
        delta = _close(
            trades, n_trades, history, n_history, bar, base, reason,
            side, size, entry_price, entry_comm, entry_bar, seen_lo, seen_hi, p,
        )  # fmt: skip
        n_trades += 1
        n_history += 1
        cash += delta
        size, side = 0.0, 0
    if close_now and paper_side != 0:
        history[n_history] = paper_side * (base / paper_entry - 1)
        n_history += 1
        paper_side = 0
    if open_side != 0 and side == 0:
        units, price = _open_units(base, open_side, cash, history, n_history, p)
        if units <= 0:
            if p.sizing == 3:  # not taken, yet half-Kelly keeps learning from signals
                paper_side, paper_entry = open_side, price
        else:
            size = units * open_side
            side = open_side
            entry_price, entry_bar = price, bar
            entry_comm = p.commission_fixed + units * price * p.commission_rel
            cash -= entry_comm
            seen_lo = seen_hi = trail = base
    return (
        n_trades, n_history, cash, size, side, entry_price, entry_comm, entry_bar,
        seen_lo, seen_hi, trail, paper_side, paper_entry,
    )  # fmt: skip


@njit(cache=True)
def simulate(open_, high, low, close, entry_long, exit_long, entry_short, exit_short, p):
    """The bar loop: (equity per bar, trades as an (n, 9) float array, halt bar or -1).

    >>> equity, trades, halt = simulate(o, h, l, c, el, xl, es, xs, kernel_params(settings))

    Trade rows: entry_bar, exit_bar, size (signed), entry_price, exit_price, commission,
    exit reason (index into ``EXIT_REASONS``), mae, mfe. Cash is realized PnL only;
    equity = cash + size x (mark - entry price), as backtesting.py keeps its books.
    Prices are float64 arrays, signals bool arrays, all of one length.
    """
    n = len(close)
    o, h, lo_, c = open_, high, low, close
    el, xl, es, xs = entry_long, exit_long, entry_short, exit_short
    equity = np.empty(n, dtype=np.float64)
    # every trade (and paper trade) opens on a bar with an entry signal, so their number is
    # bounded by those bars; fixed buffers (reallocating inside the loop costs ~100 ns a bar)
    entries = 0
    for i in range(n):
        if entry_long[i] or entry_short[i]:
            entries += 1
    trades = np.empty((entries, 9), dtype=np.float64)
    history = np.empty(entries, dtype=np.float64)  # trade returns for half-Kelly, paper included
    n_trades = n_history = 0
    has_stops = p.stop_loss > 0 or p.take_profit > 0 or p.trailing_stop > 0
    fill_close = p.fill_close

    cash = p.cash
    size = 0.0
    side = 0
    entry_price = entry_comm = 0.0
    entry_bar = 0
    seen_lo = seen_hi = trail = 0.0  # price extremes since entry; trailing-stop anchor
    paper_side, paper_entry = 0, 0.0
    pending_close, pending_open, pending_reason = False, 0, SIGNAL
    halted, halt_bar = False, -1
    peak_equity = p.cash

    for i in range(n):
        # "act" (_act) happens at one of two points of a bar: the next open, or this close
        if not fill_close and (pending_close or pending_open != 0):
            (
                n_trades, n_history, cash, size, side, entry_price, entry_comm, entry_bar,
                seen_lo, seen_hi, trail, paper_side, paper_entry,
            ) = _act(
                trades, n_trades, history, n_history, i, o[i], pending_close, pending_open,
                pending_reason, cash, size, side, entry_price, entry_comm, entry_bar,
                seen_lo, seen_hi, trail, paper_side, paper_entry, p,
            )  # fmt: skip
            pending_close, pending_open, pending_reason = False, 0, SIGNAL
        if side != 0 and not (fill_close and entry_bar == i):
            exit_base, reason = -1.0, SIGNAL
            if has_stops:
                exit_base, reason = stop_exit(side, entry_price, trail, o[i], h[i], lo_[i], p)
            if exit_base > 0:
                seen_lo, seen_hi = min(seen_lo, o[i]), max(seen_hi, o[i])
                delta = _close(
                    trades, n_trades, history, n_history, i, exit_base, reason,
                    side, size, entry_price, entry_comm, entry_bar, seen_lo, seen_hi, p,
                )  # fmt: skip
                n_trades += 1
                n_history += 1
                cash += delta
                size, side = 0.0, 0
            else:
                seen_lo, seen_hi = min(seen_lo, lo_[i]), max(seen_hi, h[i])
                if side > 0:
                    trail = max(trail, o[i], h[i])
                else:
                    trail = min(trail, o[i], lo_[i])
        if p.compat and fill_close:
            # backtesting.py's trade_on_close fills on the next bar's pass: this bar's equity
            # is logged before the fill
            equity[i] = cash + size * (c[i] - entry_price)
        if fill_close and not halted:
            close_now, open_side = _decide(
                el[i], xl[i], es[i], xs[i], side if side != 0 else paper_side, p
            )
            if close_now or open_side != 0:  # most bars do nothing
                (
                    n_trades, n_history, cash, size, side, entry_price, entry_comm, entry_bar,
                    seen_lo, seen_hi, trail, paper_side, paper_entry,
                ) = _act(
                    trades, n_trades, history, n_history, i, c[i], close_now, open_side,
                    SIGNAL, cash, size, side, entry_price, entry_comm, entry_bar,
                    seen_lo, seen_hi, trail, paper_side, paper_entry, p,
                )  # fmt: skip
        if not (p.compat and fill_close):
            equity[i] = cash + size * (c[i] - entry_price)
        if p.max_drawdown > 0 and not halted:
            peak_equity = max(peak_equity, equity[i])
            if equity[i] <= peak_equity * (1 - p.max_drawdown):
                halted, halt_bar = True, i
                if side != 0 and (fill_close or i == n - 1):
                    delta = _close(
                        trades, n_trades, history, n_history, i, c[i], DRAWDOWN_HALT,
                        side, size, entry_price, entry_comm, entry_bar, seen_lo, seen_hi, p,
                    )  # fmt: skip
                    n_trades += 1
                    n_history += 1
                    cash += delta
                    size, side = 0.0, 0
                    equity[i] = cash
                elif side != 0:
                    pending_close, pending_reason = True, DRAWDOWN_HALT
        if not fill_close and not halted and i < n - 1:
            pending_close, pending_open = _decide(
                el[i], xl[i], es[i], xs[i], side if side != 0 else paper_side, p
            )
    if n > 0 and side != 0 and p.close_at_end:
        bar, base = n - 1, c[n - 1]
        if p.compat:
            # backtesting.py's finalize_trades re-runs the last bar's orders: a market order
            # fills at its open, or with trade_on_close at the bar before's close
            if fill_close and n > 1:
                bar, base = n - 2, c[n - 2]
            else:
                bar, base = n - 1, o[n - 1]
        delta = _close(
            trades, n_trades, history, n_history, bar, base, END,
            side, size, entry_price, entry_comm, entry_bar, seen_lo, seen_hi, p,
        )  # fmt: skip
        n_trades += 1
        cash += delta
        equity[n - 1] = cash
    return equity, trades[:n_trades].copy(), halt_bar


@njit(cache=True)
def unpack_params(values):
    """The :class:`KernelParams` of ``analytics._kernel_layout.pack_params(p)``: ``p``."""
    v = values
    return KernelParams(
        v[0], v[1] != 0, v[2] != 0, v[3] != 0, int(v[4]), v[5], int(v[6]), int(v[7]), v[8],
        v[9], v[10], v[11], v[12], v[13], v[14], v[15], v[16] != 0, v[17] != 0, v[18] != 0,
    )  # fmt: skip


@njit(cache=True)
def simulate_packed(
    open_, high, low, close, entry_long, exit_long, entry_short, exit_short, params
):  # fmt: skip
    """:func:`simulate` with the settings packed in a float64 array (``pack_params``): the
    function :mod:`analytics._kernel_aot` exports, as its signature takes arrays only."""
    return simulate(
        open_, high, low, close, entry_long, exit_long, entry_short, exit_short,
        unpack_params(params),
    )  # fmt: skip


# the same loop as plain Python (no numba): slow, for debugging and to check the compiled one
simulate_py = getattr(simulate, "py_func", simulate)
