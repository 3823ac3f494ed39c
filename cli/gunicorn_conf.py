"""gunicorn's settings under ``app.py serve-prod`` (``gunicorn --config python:cli.gunicorn_conf``).

uvicorn's worker class from the uvicorn-worker package (``uvicorn.workers`` is deprecated since
uvicorn 0.30); the access log on stdout, the error log on stderr, both in LOG_FORMAT (text or
JSON, config/log_format.py); a dead worker's live gauges dropped from the metrics directory.
"""

from __future__ import annotations

import os
from typing import Any

from config.log_format import LOG_FORMATS, reformat

worker_class = "uvicorn_worker.UvicornWorker"
timeout = 120  # a worker builds the whole app before its first heartbeat: slow on a busy machine
graceful_timeout = 20  # SIGTERM: requests in flight get this long to finish
# an idle keep-alive connection is kept this long (gunicorn's default is 2 s): a client or a
# proxy that reuses a connection the server has just closed gets "disconnected without a
# response" (704 of them in one run of tests/reliability/test_load.py's load); keep it above
# the proxy's own idle timeout (nginx's upstream keepalive_timeout is 60 s)
keepalive = 75
accesslog = "-"
errorlog = "-"
control_socket_disable = True  # gunicorn 27's ~/.gunicorn/gunicorn.ctl: one per machine
GUNICORN_LOGGERS = ("gunicorn.error", "gunicorn.access")


def _log_format() -> str:
    value = os.environ.get("LOG_FORMAT", "text").strip().lower()
    return value if value in LOG_FORMATS else "text"  # Settings refuses it in the workers


if _log_format() == "json":  # gunicorn's first lines too (on_starting comes after them)
    logconfig_dict = {"formatters": {"generic": {"()": "config.log_format.JsonFormatter"}}}


def on_starting(_server: Any) -> None:
    """gunicorn's own loggers as the app's (the workers fork with them)."""
    reformat(GUNICORN_LOGGERS, _log_format())


def child_exit(_server: Any, worker: Any) -> None:
    """A worker exited (stopped, killed or crashed): its live gauges go with it."""
    from services.metrics import process_dead

    process_dead(worker.pid)
