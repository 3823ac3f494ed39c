"""Real processes for the API's reliability tests and benchmarks (issue 17): a private
PostgreSQL cluster and a private Redis on free ports (stopped and started at will, never the
shared servers), the app under gunicorn with uvicorn workers, API tokens made by
``app.py token create``, and trades stored in bulk through the driver-level path.

>>> with PrivatePostgres() as pg, PrivateRedis() as redis:
...     env = app_env(tmp, pg.url("app"), redis.url)
...     prepare(env)                                   # migrations, the bundled series
...     seed_trades(pg.url("app"), "big", 1_000_000)    # COPY, one transaction
...     with Gunicorn(env, workers=2) as server:
...         httpx2.get(server.base + "/api/v1/health")

initdb refuses to run as root: as root (CI) the cluster's folder is given to the
``postgres`` user (the Debian package's) and initdb/pg_ctl run as it.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
KEEP_ALIVE_S = 75


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition: Callable[[], Any], timeout: float, what: str, every: float = 0.05) -> Any:
    """Poll ``condition`` until it answers something true (returned); TimeoutError naming
    ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = condition()
        if found:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        time.sleep(every)


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def postgres_bin() -> Path | None:
    """The newest installed PostgreSQL's bin folder (initdb, pg_ctl), or None."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    return Path(found[-1]).parent if found else None


class PrivatePostgres:
    """A PostgreSQL cluster of its own in a temporary folder, on a free port, trust auth:
    ``stop()`` and ``start()`` it freely (the shared server on 5432 is never touched)."""

    def __init__(self, *, fsync: bool = True) -> None:
        bin_dir = postgres_bin()
        if bin_dir is None:
            raise FileNotFoundError("no /usr/lib/postgresql/*/bin/initdb: install postgresql")
        self.bin = bin_dir
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="stratlens-pg-"))
        self.data = self.folder / "data"
        self._user = "postgres" if os.geteuid() == 0 else None
        if self._user is not None:
            entry = pwd.getpwnam(self._user)
            os.chown(self.folder, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                  "--locale=C", "--no-sync")  # fmt: skip
        settings = [f"port = {self.port}", "listen_addresses = '127.0.0.1'",
                    f"unix_socket_directories = '{self.folder}'", "max_connections = 200",
                    f"fsync = {'on' if fsync else 'off'}", "shared_buffers = 128MB"]  # fmt: skip
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("\n".join(settings) + "\n")

    def _run(self, tool: str, *args: str) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [str(self.bin / tool), *args], user=self._user, cwd=self.folder,
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"{tool} {' '.join(args)} failed: {done.stdout}{done.stderr}")
        return done

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.folder / "log"), "-w",
                  "-t", "120", "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "120", "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg2

        connection = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres")
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        connection.close()
        return self.url(name)

    def __enter__(self) -> PrivatePostgres:
        self.start()
        return self

    def __exit__(self, *_: Any) -> None:
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(RuntimeError):
                self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)


class PrivateRedis:
    """redis-server of its own on a free port, in memory only; ``stop()`` and ``start()``
    again on the same port."""

    def __init__(self) -> None:
        self.exe = shutil.which("redis-server")
        if self.exe is None:
            raise FileNotFoundError("redis-server is not installed")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            [self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for(lambda: _listening(self.port), 30, f"redis-server on port {self.port}")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(30)
            self._process = None

    def __enter__(self) -> PrivateRedis:
        self.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.stop()


def app_env(data: Path, database_url: str, redis_url: str | None = None, **extra: str) -> dict:
    """The environment of the app's processes over ``database_url``: no feeds, no sample
    data loaded at start (``prepare`` loads it once), warnings only in the log."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env |= {"STRATLENS_DATA_DIR": str(data), "DATABASE_URL": database_url, "FEEDS": "none",
            "LOAD_SAMPLE_DATA": "false", "LOG_LEVEL": "WARNING", **extra}  # fmt: skip
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


def app(env: dict, *args: str) -> str:
    """``app.py ARGS`` as a process; its output (CalledProcessError with it on a failure)."""
    done = subprocess.run([PYTHON, "app.py", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"app.py {' '.join(args)} exited {done.returncode}: {done.stderr}")
    return done.stdout.strip()


def prepare(env: dict) -> None:
    """Migrate the database and store the bundled series once (the pages' charts), before
    any worker starts (two workers loading them together would race)."""
    app(env, "db", "upgrade")
    code = (
        "from config.settings import Settings\n"
        "from database.session import make_engine, make_session_factory\n"
        "from services.database_setup import seed_sample_data\n"
        "engine = make_engine(Settings.from_env().database_url)\n"
        "seed_sample_data(make_session_factory(engine))\n"
        "engine.dispose()\n"
    )
    subprocess.run([PYTHON, "-c", code], cwd=ROOT, env=env, check=True, timeout=600)


def token(env: dict, account: str, scope: str) -> str:
    return app(env, "token", "create", "--account", account, "--scope", scope)


def tokens(env: dict, wanted: list[tuple[str, str]]) -> list[str]:
    """A token per (account, scope), made in one process (TokenService, as `token create`)."""
    code = (
        "import sys\n"
        "from config.settings import Settings\n"
        "from database.session import make_engine, make_session_factory\n"
        "from services.tokens import TokenService\n"
        "engine = make_engine(Settings.from_env().database_url)\n"
        "service = TokenService(make_session_factory(engine))\n"
        "for pair in sys.argv[1:]:\n"
        "    account, scope = pair.split('=')\n"
        "    print(service.create(account, scope).token)\n"
        "engine.dispose()\n"
    )
    done = subprocess.run(
        [PYTHON, "-c", code, *(f"{a}={s}" for a, s in wanted)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    return done.stdout.split()


def gunicorn_available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("gunicorn", "uvicorn_worker"))


class Gunicorn:
    """``gunicorn 'app:create_asgi_app()' -k uvicorn_worker.UvicornWorker -w N`` on a free
    port: the pages and the API in every worker (``api_only``: ``serve-api --api-only``'s
    app). ``workers()``: the worker processes' ids (the master restarts one that dies)."""

    def __init__(
        self, env: dict, *, workers: int = 2, api_only: bool = False, log: Path | None = None
    ) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = log or Path(env["STRATLENS_DATA_DIR"]) / f"gunicorn-{self.port}.log"
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [PYTHON, "-m", "gunicorn",
             "bench._api_servers:api_only_app()" if api_only else "app:create_asgi_app()", "-k",
             "uvicorn_worker.UvicornWorker", "-w", str(workers), "-b", f"127.0.0.1:{self.port}",
             "--timeout", "300", "--graceful-timeout", "10", "--log-level", "warning",
             # gunicorn's 2 s keep-alive closes connections a busy client is about to reuse
             # (the client reads "Server disconnected without sending a response")
             "--keep-alive", str(KEEP_ALIVE_S), "--no-control-socket"],
            cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        self.expected = workers

    def wait_ready(self, timeout: float = 300) -> None:
        """Until every worker answers /api/v1/health (each takes the port once booted)."""
        import httpx2

        def ready() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.log_path.read_text()[-3000:]}")
            if len(self.workers()) < self.expected:
                return False
            try:
                return httpx2.get(self.base + "/api/v1/health", timeout=5).status_code == 200
            except httpx2.TransportError:
                return False

        wait_for(ready, timeout, "gunicorn's workers answering", every=0.2)
        # each worker's first request pays its imports: ask until every worker has answered
        # (gunicorn hands a new connection to whichever accepts first)
        for _ in range(4 * self.expected):
            httpx2.get(self.base + "/api/v1/health", timeout=60)

    def workers(self) -> list[int]:
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            return [int(p) for p in path.read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            return []

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(30)
        self._log.close()

    def __enter__(self) -> Gunicorn:
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_: Any) -> None:
        self.stop()


def api_only_app() -> Any:
    """``serve-api --api-only``'s ASGI app, for gunicorn (``bench._api_servers:api_only_app()``)."""
    from cli.serve import asgi_app
    from config.settings import Settings

    return asgi_app(Settings.from_env(), api_only=True)


T0_MS = 1_577_836_800_000  # 2020-01-01


def seed_trades(database_url: str, account: str, n: int, *, symbol: str = "SEED") -> None:
    """Store ``n`` fills of ``account`` (buy/sell pairs of one unit, one a minute from
    2020-01-01, ids ``<account>-<k>``) in one transaction through the driver-level path
    (database.repositories._trade_io: COPY on PostgreSQL); pnl and its running sum FIFO."""
    import numpy as np

    from database.repositories._trade_io import insert_trades
    from database.session import make_engine, make_session_factory

    k = np.arange(n)
    rng = np.random.default_rng(7)
    price = np.round(100 + np.cumsum(rng.normal(0, 0.1, n)), 4)
    price = np.maximum(price, 1.0)
    sell = k % 2 == 1
    pnl = np.zeros(n)
    pnl[sell] = price[sell] - price[k[sell] - 1]
    times = (np.datetime64(T0_MS, "ms") + k * np.timedelta64(60, "s")).astype("datetime64[us]")
    columns = {
        "trade_id": [f"{account}-{i}" for i in range(n)], "account_id": [account] * n,
        "strategy_id": ["seed"] * n, "run_id": [None] * n, "symbol": [symbol] * n,
        "side": np.where(sell, "sell", "buy").tolist(), "price": price.tolist(),
        "volume": [1.0] * n, "commission": [0.0] * n, "execution_time": times,
        "market_context": ["{}"] * n, "labels": ["[]"] * n, "pnl": pnl.tolist(),
        "cumulative_pnl": np.cumsum(pnl).tolist(), "source": ["seed"] * n, "order_id": [None] * n,
    }  # fmt: skip
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine).begin() as session:
            insert_trades(session, columns)
        if engine.dialect.name == "postgresql":  # the planner's statistics, as autovacuum would
            with engine.connect() as connection:
                connection.exec_driver_sql("ANALYZE trades")
                connection.commit()
    finally:
        engine.dispose()


def percentile(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


__all__ = [
    "Gunicorn",
    "PrivatePostgres",
    "PrivateRedis",
    "app",
    "app_env",
    "free_port",
    "gunicorn_available",
    "percentile",
    "prepare",
    "seed_trades",
    "token",
    "tokens",
    "wait_for",
]
