"""One ASGI app for the pages and the API: the API's routes under /api, the Dash app's Flask
server (WSGI, through a2wsgi) at / for everything else.

>>> app = with_pages(create_api(sessions), dash_app.server)
>>> uvicorn.run(app, host="127.0.0.1", port=8050)       # app.py serve-api does this

The Flask server runs on a2wsgi's thread pool, as it would under a WSGI server; the API's
synchronous routes on Starlette's. Dash's own guards (request size, loopback-only writing
callbacks) still see the client's address.
"""

from __future__ import annotations

from typing import Any

from a2wsgi import WSGIMiddleware
from fastapi import FastAPI

PAGE_WORKERS = 16  # threads serving the pages: a tab keeps one request in flight at a time


def with_pages(api: FastAPI, wsgi_app: Any, *, workers: int = PAGE_WORKERS) -> FastAPI:
    """``api`` with ``wsgi_app`` mounted at / (after the API's routes, which match first)."""
    api.mount("/", WSGIMiddleware(wsgi_app, workers=workers))
    return api


__all__ = ["with_pages"]
