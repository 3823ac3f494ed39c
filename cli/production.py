"""``app.py serve-prod`` (``make serve``): the production shape, supervised by one process.

    app.py serve-prod
      ├─ migrates the database once, stores the bundled data on first start
      ├─ app.py runner            the feeds and the paper-trading runner (its own process)
      └─ gunicorn                 WEB_CONCURRENCY workers (uvicorn_worker.UvicornWorker), each
                                  the pages and the API (worker_app: api/asgi.py's app) with
                                  TRADING_RUNNER=external: no worker trades, and
                                  LIVE_FEEDS=follow: the workers' charts follow the runner's
                                  feeds through Redis (services/feed_relay.py), none runs them

Settings from the environment (README, "Production"): DATABASE_URL must be PostgreSQL and
REDIS_URL must answer (the workers share the chart cache and the live push through it); HOST,
PORT and STRATLENS_PASSWORD as for ``serve``. Every process writes its Prometheus metrics into
one directory (PROMETHEUS_MULTIPROC_DIR, emptied at start; a fresh temporary one by default),
which /metrics reads. SIGTERM or SIGINT stops both children (gunicorn lets requests finish) and
exits 0; a child that exits on its own stops the other, and serve-prod exits 1 naming it.

A Python supervisor rather than a shell script or a Procfile: it checks the settings with the
app's own rules (one-line errors before anything starts), migrates once before the workers
race for it, owns the metrics directory's life, and runs wherever the app does.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from config.settings import Settings

log = logging.getLogger("stratlens")
ROOT = Path(__file__).resolve().parent.parent
POLL_S = 0.2  # how often the supervisor looks at its children
STOP_WITHIN_S = 30.0  # a child still running this long after SIGTERM is killed
REDIS_TIMEOUT_S = 3.0
WORKER_APP = "cli.production:worker_app()"  # gunicorn's factory call, in each worker


def register(commands: argparse._SubParsersAction) -> None:
    prod = commands.add_parser(
        "serve-prod",
        help="production: the runner and gunicorn's workers on PostgreSQL and Redis (make serve)",
    )
    prod.set_defaults(run=serve_prod)


def production_problem(settings: Settings) -> str | None:
    """Why the production shape cannot start with ``settings``, in one line, or None."""
    from cli.serve import exposure_problem

    if not settings.database_url.startswith("postgresql"):
        return (
            f"DATABASE_URL={settings.database_url} is not PostgreSQL: make serve needs"
            " postgresql+psycopg2://USER@HOST:PORT/DB (several processes write at once);"
            " make run serves SQLite in one process"
        )
    if settings.redis_url is None:
        return "REDIS_URL is unset: make serve needs Redis (redis://HOST:6379/0)"
    import redis

    client = redis.Redis.from_url(
        settings.redis_url, socket_connect_timeout=REDIS_TIMEOUT_S, socket_timeout=REDIS_TIMEOUT_S
    )
    try:
        client.ping()
    except redis.RedisError as exc:
        return f"Redis unreachable at REDIS_URL={settings.redis_url}: {exc}"
    finally:
        client.close()
    return exposure_problem(settings)


def metrics_directory() -> tuple[Path, bool]:
    """This run's metrics directory, emptied, and whether serve-prod made it (and removes it)."""
    from services.metrics import MULTIPROC_ENV

    given = os.environ.get(MULTIPROC_ENV)
    if not given:
        return Path(tempfile.mkdtemp(prefix="stratlens-metrics-")), True
    folder = Path(given)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):  # a previous run's values: they would add up with ours
        stale.unlink()
    return folder, False


def bind(settings: Settings) -> str:
    host = f"[{settings.host.strip('[]')}]" if ":" in settings.host else settings.host
    return f"{host}:{settings.port}"


def commands(settings: Settings) -> dict[str, list[str]]:
    """The children's command lines, by name."""
    return {
        "runner": [sys.executable, str(ROOT / "app.py"), "runner"],
        "gunicorn": [
            sys.executable, "-m", "gunicorn", "--config", "python:cli.gunicorn_conf",
            "--workers", str(settings.web_concurrency), "--bind", bind(settings), WORKER_APP,
        ],
    }  # fmt: skip


def serve_prod(_args: argparse.Namespace, settings: Settings) -> int:
    """Check, migrate, start the runner and gunicorn, and supervise them until stopped."""
    from services.database_setup import prepare_database
    from services.metrics import MULTIPROC_ENV

    if (problem := production_problem(settings)) is not None:
        print(f"refusing to start: {problem}", file=sys.stderr)
        return 2
    prepare_database(settings).dispose()  # once, before the processes that would race for it
    folder, made = metrics_directory()
    os.environ[MULTIPROC_ENV] = str(folder)  # before this process imports prometheus_client
    env = os.environ | {MULTIPROC_ENV: str(folder), "TRADING_RUNNER": "external"}
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    children: dict[str, subprocess.Popen[Any]] = {}
    try:
        for name, argv in commands(settings).items():
            # the runner runs the live feeds; the workers follow them (services/feed_relay.py)
            feeds = "run" if name == "runner" else "follow"
            children[name] = subprocess.Popen(argv, cwd=ROOT, env=env | {"LIVE_FEEDS": feeds})
        log.info(
            "StratLens (production) on http://%s/ : gunicorn with %d workers (pid %d), the"
            " runner (pid %d); metrics in %s", bind(settings), settings.web_concurrency,
            children["gunicorn"].pid, children["runner"].pid, folder,
        )  # fmt: skip
        died = supervise(children, stop)
    finally:
        stopped = stop_all(children)
        if made:
            shutil.rmtree(folder, ignore_errors=True)
    if died is not None:
        name, code = died
        log.error(
            "serve-prod: %s (pid %d) exited with code %s; stopped the others",
            name, children[name].pid, code,
        )  # fmt: skip
        return 1
    failed = {name: code for name, code in stopped.items() if code != 0}
    if failed:
        listed = ", ".join(f"{name} exited with code {code}" for name, code in failed.items())
        log.error("serve-prod: on stopping, %s", listed)
        return 1
    return 0


def supervise(children: dict[str, subprocess.Popen[Any]], stop: threading.Event) -> Any:
    """Wait until ``stop`` is set (None) or a child exits: (its name, its exit code)."""
    while not stop.wait(POLL_S):
        for name, child in children.items():
            if child.poll() is not None:
                return name, child.returncode
    return None


def stop_all(children: dict[str, subprocess.Popen[Any]]) -> dict[str, int]:
    """SIGTERM each running child, wait for it (SIGKILL after STOP_WITHIN_S); exit codes."""
    from services.metrics import process_dead

    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    codes = {}
    for name, child in children.items():
        try:
            codes[name] = child.wait(STOP_WITHIN_S)
        except subprocess.TimeoutExpired:
            child.kill()
            codes[name] = child.wait()
        process_dead(child.pid)
    return codes


def worker_app() -> Any:
    """One gunicorn worker's ASGI app: the pages and the API (cli.serve.asgi_app), logging as
    LOG_FORMAT says, and never the trading runner (``app.py runner`` trades)."""
    from cli.serve import asgi_app
    from config.log_format import configure_logging
    from config.settings import Settings

    settings = Settings.from_env().with_overrides(trading_runner="external")
    configure_logging(settings)
    return asgi_app(settings, warm=True)


__all__ = ["production_problem", "register", "serve_prod", "worker_app"]
