"""The REST API (docs/api.md): ``create_api(sessions)`` builds it; ``api.asgi.with_pages``
serves the Dash pages beside it in one ASGI app (``app.py serve-api``)."""

from api.app import create_api

__all__ = ["create_api"]
