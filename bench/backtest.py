"""Backtest engine and metrics against backtesting.py, vectorbt and QuantStats, in one run.

This times the kernel only: ``run_backtest`` + ``compute_metrics`` on bars and signals already
in memory as arrays (no database, no command, no process start but in the fresh-process rows).
What the user meets (``app.py backtest`` and ``sweep`` as fresh processes from start to exit,
the import, the pages in a browser) is timed by bench/user_paths.py.

    python bench/backtest.py [--bars 1000000] [--bt-bars 100000] [--qs-n 1000000] [--repeat 3]
    pip install -r requirements-bench.txt      # vectorbt (+ vectorbt-rust); backtesting/quantstats
                                               # come with requirements-dev.txt

Same data and signals for everyone: a --bars 1m random walk (market.sample_data), EMA
crossover signals (ema_crossover fast=12 slow=26 direction="both"), generated once, outside
the timings. Timed (best of --repeat, after one warm-up call):

- ours: ``run_backtest`` + ``compute_metrics`` (the full statistics), at --bars;
- backtesting.py: ``Backtest(...).run()`` (trades + its statistics) with a Strategy trading the
  precomputed signals, once (pure Python: about a minute at 1,000,000 bars), at --bt-bars
  (default: --bars), against ours at the same size in ``compat="backtesting.py"`` (both trade
  counts are printed);
- vectorbt: ``Portfolio.from_signals`` (signals shifted one bar, filled at the open, like our
  ``next_open``) + ``.stats()``, on its Rust engine when vectorbt-rust is installed;
- metrics: ``returns_metrics`` vs ``quantstats.reports.metrics(mode="full")`` on --qs-n returns;
- a fresh process to the first result: from spawning a subprocess to the moment it has the
  statistics (it imports, loads the bars and signals from an .npz, runs ``run_backtest`` +
  ``compute_metrics``; interpreter shutdown is not counted); ours with numba's JIT cold (empty
  numba cache, so the kernel compiles) and warm (cache present), and with the prebuilt kernel
  (analytics/_kernel_aot.py: no numba at all; its first run builds it when absent), and
  vectorbt first and again. Ours runs in the
  runtime environment a user gets from requirements.txt (``.venv-runtime``, created on the
  first run; --runtime-python to choose another): the dev environment also holds scipy, which
  numba imports on its first call to check for BLAS (+0.25 s); that figure is printed too.

Goals (PASS/FAIL): ours >= 100x faster than backtesting.py per bar; ours (with statistics) no
slower than vectorbt; fresh process to first result < 1 s; metric set <= 50 ms and >= 5x faster
than QuantStats.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from analytics.backtest import BacktestSettings, run_backtest  # noqa: E402
from analytics.metrics import compute_metrics, returns_metrics  # noqa: E402
from market.sample_data import generate_random_walk  # noqa: E402
from strategies.registry import create  # noqa: E402
from strategies.signals import SIGNAL_COLUMNS  # noqa: E402

CASH = 10_000.0
GOAL_VS_BACKTESTING = 100.0
GOAL_FIRST_RESULT_S = 1.0
GOAL_METRICS_MS = 50.0
GOAL_VS_QUANTSTATS = 5.0


def best_of(repeat: int, fn) -> tuple[float, object]:
    """(best wall time in seconds, last result) of ``repeat`` calls after one warm-up call."""
    result = fn()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else "PASS" if ok else "FAIL"


def bars_and_signals(n: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    candles = generate_random_walk("BENCH", "1m", "2020-01-01", n, seed=7)
    signals = create("ema_crossover", fast=12, slow=26, direction="both").generate(candles)
    return candles, signals.frame[list(SIGNAL_COLUMNS)]


def ours(candles: pd.DataFrame, signals: pd.DataFrame, settings: BacktestSettings):
    result = run_backtest(candles, signals, settings)
    stats = compute_metrics(result.equity, result.trades, benchmark=result.benchmark)
    return result, stats


def backtesting_py(candles: pd.DataFrame, signals: pd.DataFrame):
    """(seconds, stats) of backtesting.py trading the same signals, or (None, reason)."""
    try:
        from backtesting import Backtest, Strategy
    except ImportError as exc:
        return None, f"not installed ({exc}); pip install -r requirements-dev.txt"
    el, xl, es, xs = (signals[c].to_numpy(dtype=bool) for c in
                      ("entry_long", "exit_long", "entry_short", "exit_short"))  # fmt: skip

    class Signals(Strategy):
        def init(self) -> None:
            pass

        def next(self) -> None:
            i = len(self.data) - 1
            pos = self.position
            if (pos.is_long and (xl[i] or es[i])) or (pos.is_short and (xs[i] or el[i])):
                pos.close()
            if el[i] and not xl[i] and not es[i]:
                self.buy()
            elif es[i] and not xs[i] and not el[i]:
                self.sell()

    data = candles.rename(columns=str.capitalize)[["Open", "High", "Low", "Close", "Volume"]]
    data.index = data.index.tz_localize(None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bt = Backtest(data, Signals, cash=CASH, finalize_trades=True)
        start = time.perf_counter()
        stats = bt.run()
        return time.perf_counter() - start, stats


def vectorbt_run(candles: pd.DataFrame, signals: pd.DataFrame, repeat: int):
    """(seconds, first-call seconds, engine, stats) or (None, reason, None, None)."""
    try:
        import vectorbt as vbt
        from vectorbt._engine import is_rust_available
    except Exception as exc:  # any import failure is reported, not raised
        return None, f"cannot import vectorbt ({type(exc).__name__}: {exc})", None, None
    engine = "rust" if is_rust_available() else "numba"
    # a tz-naive index: vectorbt (like pandas' to_numpy) turns a tz-aware one into Timestamp
    # objects, ~60 ns a bar per conversion; its fastest path is naive
    candles = candles.tz_convert(None)
    signals = signals.tz_convert(None)
    # our next_open: a signal on bar i fills at the open of bar i+1
    shifted = {c: signals[c].shift(1, fill_value=False).astype(bool) for c in signals.columns}

    def run():
        pf = vbt.Portfolio.from_signals(
            candles["close"],
            entries=shifted["entry_long"],
            exits=shifted["exit_long"],
            short_entries=shifted["entry_short"],
            short_exits=shifted["exit_short"],
            price=candles["open"],
            init_cash=CASH,
            freq="1min",
            engine=engine,
        )
        return pf, pf.stats()

    start = time.perf_counter()
    run()
    first = time.perf_counter() - start
    seconds, (_, stats) = best_of(repeat, run)
    return seconds, first, engine, stats


FIRST_RESULT_SCRIPT = """
import time
t_start = time.perf_counter()
import sys
sys.path.insert(0, {root!r})
import numpy as np, pandas as pd
data = np.load({npz!r})
index = pd.DatetimeIndex(data["index"])
if {engine!r} == "ours":
    index = index.tz_localize("UTC")  # our candles are UTC; vectorbt's fast path is naive
candles = pd.DataFrame({{c: data[c] for c in ("open", "high", "low", "close", "volume")}},
                       index=index)
signals = pd.DataFrame({{c: data[c] for c in ("entry_long", "exit_long", "entry_short",
                                             "exit_short")}}, index=index)
if {engine!r} == "ours":
    from analytics.backtest import run_backtest
    from analytics.metrics import compute_metrics
    t0 = time.perf_counter()  # imports and data loaded
    result = run_backtest(candles, signals)
    t1 = time.perf_counter()
    stats = compute_metrics(result.equity, result.trades, benchmark=result.benchmark)
    t2 = time.perf_counter()
    n_trades = len(result.trades)
else:
    import vectorbt as vbt
    t0 = time.perf_counter()  # imports and data loaded
    shifted = {{c: signals[c].shift(1, fill_value=False).astype(bool) for c in signals}}
    pf = vbt.Portfolio.from_signals(candles["close"], entries=shifted["entry_long"],
        exits=shifted["exit_long"], short_entries=shifted["entry_short"],
        short_exits=shifted["exit_short"], price=candles["open"], init_cash=10_000.0,
        freq="1min", engine={engine!r})
    t1 = time.perf_counter()
    stats = pf.stats()
    t2 = time.perf_counter()
    n_trades = int(stats["Total Trades"])
done = time.monotonic()  # system-wide clock: the parent compares it with its spawn time
print(f"{{done:.6f}} {{t0 - t_start:.4f}} {{t1 - t0:.4f}} {{t2 - t1:.4f}} {{n_trades}}")
"""


def fresh_process(
    npz: str, engine: str, cache_dir: str | None, python: str = sys.executable, kernel: str = ""
) -> tuple[float, ...]:
    """(s from spawn to the first result, imports + load s, backtest s, stats s, trades);
    ``kernel="jit"`` makes ours skip its prebuilt kernel (STRATLENS_KERNEL)."""
    script = FIRST_RESULT_SCRIPT.format(root=str(ROOT), npz=npz, engine=engine)
    env = dict(os.environ, STRATLENS_KERNEL=kernel)
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = cache_dir
    start = time.monotonic()
    out = subprocess.run(
        [python, "-c", script], env=env, capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip().splitlines()[-1])
    done, load_s, backtest_s, stats_s, trades = out.stdout.split()
    wall = float(done) - start
    return wall, float(load_s), float(backtest_s), float(stats_s), int(trades)


def runtime_python(path: str | None) -> tuple[str | None, str]:
    """(interpreter of an environment with requirements.txt only, or None, how it was found)."""
    if path:
        return path, path
    venv = ROOT / ".venv-runtime"
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"creating {venv} (requirements.txt only) for the fresh-process timing ...")
        made = subprocess.run([sys.executable, "-m", "venv", str(venv)], check=False)
        pip = subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "-r", str(ROOT / "requirements.txt")],
            check=False, capture_output=True, text=True,
        )  # fmt: skip
        if made.returncode or pip.returncode:
            return None, f"could not create {venv}: {pip.stderr.strip()[-300:]}"
    return str(python), str(venv.relative_to(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument(
        "--bt-bars", type=int, default=None, help="bars for backtesting.py (default: --bars)"
    )
    parser.add_argument(
        "--runtime-python",
        default=None,
        help="interpreter for the fresh-process timing (default: .venv-runtime)",
    )
    parser.add_argument("--qs-n", type=int, default=1_000_000, help="returns for QuantStats")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-fresh", action="store_true", help="no fresh-process timings")
    args = parser.parse_args()
    rows: list[tuple[str, bool | None, str]] = []

    candles, signals = bars_and_signals(args.bars)
    n = len(candles)
    print(f"EMA crossover (12/26, both) on {n:,} 1m bars; best of {args.repeat} after a warm-up")

    # -- ours at --bars --------------------------------------------------------------------
    default = BacktestSettings(cash=CASH)
    t_bt, _ = best_of(args.repeat, lambda: run_backtest(candles, signals, default))
    t_all, (result, _) = best_of(args.repeat, lambda: ours(candles, signals, default))
    print(f"ours          run_backtest {t_bt * 1e3:9.1f} ms {t_bt / n * 1e9:7.1f} ns/bar   "
          f"+ compute_metrics {t_all * 1e3:9.1f} ms {t_all / n * 1e9:7.1f} ns/bar   "
          f"trades {len(result.trades)}")  # fmt: skip
    naive_c, naive_s = candles.tz_convert(None), signals.tz_convert(None)
    t_naive, _ = best_of(args.repeat, lambda: ours(naive_c, naive_s, default))
    print(f"ours          same, tz-naive index (as vectorbt gets): + compute_metrics "
          f"{t_naive * 1e3:9.1f} ms {t_naive / n * 1e9:7.1f} ns/bar")  # fmt: skip

    # -- vectorbt at --bars ----------------------------------------------------------------
    t_vbt, first_vbt, engine, vstats = vectorbt_run(candles, signals, args.repeat)
    if t_vbt is None:
        print(f"vectorbt      {first_vbt}")
        rows.append(("ours (with statistics) no slower than vectorbt", None, first_vbt))
    else:
        print(f"vectorbt      from_signals + stats ({engine}) {t_vbt * 1e3:9.1f} ms "
              f"{t_vbt / n * 1e9:7.1f} ns/bar   first call {first_vbt:.2f} s   "
              f"trades {int(vstats['Total Trades'])}")  # fmt: skip
        rows.append((
            f"ours (with statistics) no slower than vectorbt[{engine}]",
            t_all <= t_vbt,
            f"{t_all / n * 1e9:.1f} vs {t_vbt / n * 1e9:.1f} ns/bar "
            f"({t_vbt / t_all:.2f}x; kernel only {t_vbt / t_bt:.1f}x)",
        ))  # fmt: skip
        rows.append((
            "  same, both on a tz-naive index",
            t_naive <= t_vbt,
            f"{t_naive / n * 1e9:.1f} vs {t_vbt / n * 1e9:.1f} ns/bar ({t_vbt / t_naive:.2f}x)",
        ))  # fmt: skip

    # -- backtesting.py at --bt-bars -------------------------------------------------------
    m = min(args.bt_bars or n, n)
    small_c, small_s = candles.iloc[:m], signals.iloc[:m]
    compat = BacktestSettings(cash=CASH, compat="backtesting.py")
    t_small, (small_result, _) = best_of(args.repeat, lambda: ours(small_c, small_s, compat))
    t_small_bt, _ = best_of(args.repeat, lambda: run_backtest(small_c, small_s, compat))
    naive_sc, naive_ss = small_c.tz_convert(None), small_s.tz_convert(None)
    t_small_naive, _ = best_of(args.repeat, lambda: ours(naive_sc, naive_ss, compat))
    t_btpy, btstats = backtesting_py(small_c, small_s)
    print(f"ours          compat, + compute_metrics at {m:,} bars {t_small * 1e3:9.1f} ms "
          f"{t_small / m * 1e9:7.1f} ns/bar   trades {len(small_result.trades)}")  # fmt: skip
    if t_btpy is None:
        print(f"backtesting.py  {btstats}")
        rows.append(("ours >= 100x faster than backtesting.py", None, btstats))
    else:
        print(f"backtesting.py  Backtest.run at {m:,} bars (1 run) {t_btpy * 1e3:9.1f} ms "
              f"{t_btpy / m * 1e9:7.1f} ns/bar   trades {int(btstats['# Trades'])}")  # fmt: skip
        ratio = t_btpy / t_small
        rows.append((
            f"ours >= {GOAL_VS_BACKTESTING:g}x faster than backtesting.py",
            ratio >= GOAL_VS_BACKTESTING,
            f"{ratio:.0f}x at {m:,} bars (run_backtest alone {t_btpy / t_small_bt:.0f}x)",
        ))  # fmt: skip
        rows.append((
            "  same, on a tz-naive index",
            t_btpy / t_small_naive >= GOAL_VS_BACKTESTING,
            f"{t_btpy / t_small_naive:.0f}x at {m:,} bars",
        ))  # fmt: skip

    # -- metrics vs QuantStats -------------------------------------------------------------
    rng = np.random.default_rng(11)
    q_index = pd.date_range("2000-01-01", periods=args.qs_n, freq="min")
    returns = pd.Series(rng.normal(0.0002, 0.01, args.qs_n), index=q_index)
    t_ours_m, _ = best_of(args.repeat, lambda: returns_metrics(returns, periods_per_year=252))
    utc = returns.tz_localize("UTC")
    t_utc_m, _ = best_of(1, lambda: returns_metrics(utc, periods_per_year=252))
    print(f"metrics       returns_metrics on {args.qs_n:,} returns {t_ours_m * 1e3:9.1f} ms "
          f"(tz-naive index, as QuantStats gets); UTC index {t_utc_m * 1e3:.1f} ms")  # fmt: skip
    rows.append((f"metric set <= {GOAL_METRICS_MS:g} ms", t_ours_m * 1e3 <= GOAL_METRICS_MS,
                 f"{t_ours_m * 1e3:.1f} ms"))  # fmt: skip
    try:
        import quantstats as qs
    except ImportError as exc:
        print(f"quantstats    not installed ({exc})")
        rows.append(("metric set >= 5x faster than QuantStats", None, "not installed"))
    else:
        naive = returns

        def qs_full():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return qs.reports.metrics(naive, mode="full", display=False)

        start = time.perf_counter()
        qs_full()
        t_qs = time.perf_counter() - start  # one run: it is slow
        print(f"quantstats    reports.metrics(mode='full') (1 run) {t_qs * 1e3:9.1f} ms")
        rows.append((
            f"metric set >= {GOAL_VS_QUANTSTATS:g}x faster than QuantStats",
            t_qs / t_ours_m >= GOAL_VS_QUANTSTATS,
            f"{t_qs / t_ours_m:.1f}x",
        ))  # fmt: skip

    # -- fresh process to the first result -------------------------------------------------
    if not args.skip_fresh:
        with tempfile.TemporaryDirectory() as tmp:
            npz = str(Path(tmp) / "bars.npz")
            arrays = {c: candles[c].to_numpy() for c in ("open", "high", "low", "close", "volume")}
            arrays |= {c: signals[c].to_numpy(dtype=bool) for c in signals.columns}
            arrays["index"] = candles.index.tz_convert(None).to_numpy()
            np.savez(npz, **arrays)
            cache = str(Path(tmp) / "numba_cache")
            python, where = runtime_python(args.runtime_python)
            runs: list[tuple[str, str, str, str, str]] = []
            if python is None:
                print(f"fresh process {where}")
                rows.append(("fresh process to first result (runtime environment)", None, where))
            else:
                runs += [
                    (f"ours, {label}, {where}", "ours", cache, python, kernel)
                    for label, kernel in (
                        ("JIT, cold (empty numba cache)", "jit"),
                        ("JIT, warm (numba cache present)", "jit"),
                        ("prebuilt, first (builds if absent)", ""),
                        ("prebuilt kernel (AOT)", ""),
                    )
                ]
            runs.append(
                ("ours, JIT, warm, dev environment (+ scipy)", "ours", cache, sys.executable, "jit")
            )
            if t_vbt is not None:
                runs += [
                    (f"vectorbt[{engine}], first", engine, cache, sys.executable, ""),
                    (f"vectorbt[{engine}], again", engine, cache, sys.executable, ""),
                ]
            for label, which, cache_dir, exe, kernel in runs:
                wall, load, b, s, trades = fresh_process(npz, which, cache_dir, exe, kernel)
                print(f"fresh process {label:<46} first result {wall:6.2f} s (imports+load "
                      f"{load:.2f} s, backtest {b:.3f} s, stats {s:.3f} s, "
                      f"trades {trades})")  # fmt: skip
                if label.startswith("ours, prebuilt kernel"):
                    rows.append((
                        f"fresh process to first result < {GOAL_FIRST_RESULT_S:g} s (prebuilt)",
                        wall < GOAL_FIRST_RESULT_S, f"{wall:.2f} s ({where})",
                    ))  # fmt: skip

    print("\ngoal".ljust(66), "verdict  measured")
    for label, ok, measured in rows:
        print(f"{label:<65} {verdict(ok):<8} {measured}")
    return 0 if all(ok is not False for _, ok, _ in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
