"""How log records print: text lines (the default) or one JSON object per line (LOG_FORMAT=json).

>>> configure_logging(settings)          # app.py's commands: a root handler in settings' format
>>> reformat(["gunicorn.error"], "json") # a server's own handlers in the same format

Both cut a line at MAX_LOG_LINE characters and print an API token (``?token=slt_...``, which
uvicorn logs with a WebSocket's path) as ``[redacted]``. A JSON record holds ``time`` (UTC,
ISO 8601), ``level``, ``logger``, ``process``, ``message`` and, with a traceback,
``exception``; an access line of uvicorn (``uvicorn.access``: under gunicorn its access
log) also holds ``client``, ``method``, ``path``, ``http_version`` and ``status``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from config.settings import Settings

LOG_FORMATS = ("text", "json")
MAX_LOG_LINE = 2_000
"""Longest line a log record prints: a message quoting a 50 MB request body must not become a
50 MB log line."""
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
ACCESS_FIELDS = ("client", "method", "path", "http_version", "status")  # uvicorn's access args
# an API token in a URL (a WebSocket's ?token=, which uvicorn logs with the path) or a header
SECRET = re.compile(r"(token=|Bearer\s+)slt_[^&\s\"']*", re.IGNORECASE)


def redact(text: str) -> str:
    """``text`` without the API tokens it quotes (``token=[redacted]``)."""
    return SECRET.sub(r"\1[redacted]", text) if "slt_" in text else text


def _cut(line: str) -> str:
    line = redact(line)
    if len(line) <= MAX_LOG_LINE:
        return line
    return f"{line[:MAX_LOG_LINE]}... [{len(line) - MAX_LOG_LINE:,} characters cut]"


class BoundedFormatter(logging.Formatter):
    """Each line of a formatted record (tracebacks included) cut to MAX_LOG_LINE characters."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if len(text) <= MAX_LOG_LINE:
            return redact(text)
        return "\n".join(_cut(line) for line in text.split("\n"))


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (a traceback is a field, not more lines)."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "process": record.process,
            "message": _cut(record.getMessage()),
        }
        args = record.args
        if record.name == "uvicorn.access" and isinstance(args, tuple) and len(args) == 5:
            document.update(zip(ACCESS_FIELDS, args, strict=True))
            document["path"] = redact(str(document["path"]))
        if record.exc_info:
            document["exception"] = "\n".join(
                _cut(line) for line in self.formatException(record.exc_info).split("\n")
            )
        return json.dumps(document, default=str, ensure_ascii=False)


def formatter(log_format: str) -> logging.Formatter:
    """The formatter of ``log_format`` (one of LOG_FORMATS)."""
    return JsonFormatter() if log_format == "json" else BoundedFormatter(TEXT_FORMAT)


def reformat(loggers: Iterable[str], log_format: str) -> None:
    """Give every handler of ``loggers`` (by name) the formatter of ``log_format``: a server's
    own loggers (gunicorn's error and access logs) print as the app's."""
    for name in loggers:
        for handler in logging.getLogger(name).handlers:
            handler.setFormatter(formatter(log_format))


def configure_logging(settings: Settings) -> None:
    """A root handler on stderr in ``settings.log_format`` (unless the host set one up: as
    basicConfig, a host that set up logging keeps its own), at ``settings.log_level``."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(formatter(settings.log_format))
        root.addHandler(handler)
    root.setLevel(settings.log_level_number)
    if settings.log_level != "DEBUG":  # one line per live tick, per migration step: noise
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        logging.getLogger("alembic").setLevel(logging.WARNING)


__all__ = [
    "LOG_FORMATS",
    "MAX_LOG_LINE",
    "BoundedFormatter",
    "JsonFormatter",
    "configure_logging",
    "formatter",
    "redact",
    "reformat",
]
