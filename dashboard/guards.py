"""What the server refuses before any callback runs: oversized requests, requests without
the password when one is set, and callbacks that write data when they come from another
machine without it.

- Request bodies above ``Settings.max_request_mb`` get 413 (Flask's MAX_CONTENT_LENGTH: the
  body is never read whole, never logged); the answer is one JSON line.
- With a password (``STRATLENS_PASSWORD``), every request must carry it as HTTP Basic
  credentials (any user name): 401 with ``WWW-Authenticate: Basic`` otherwise, so a browser
  asks for it once. ``/debug/stats`` checks its own admin token instead.
- Without a password, a callback that writes (a backtest run stores one) is answered 403
  unless the request comes from a loopback address: the dashboard is open on 127.0.0.1 by
  default, and anyone who can reach another address it is bound to must not fill its
  database (serving on another address needs the password: cli/serve.py refuses otherwise).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import json
import logging
from collections.abc import Iterable

import flask
from werkzeug.exceptions import RequestEntityTooLarge

log = logging.getLogger("stratlens.server")

CALLBACK_PATH = "/_dash-update-component"


OWN_AUTH_PATHS = frozenset({"/debug/stats"})  # checks an API token itself


def install(
    server: flask.Flask,
    *,
    max_request_bytes: int,
    write_outputs: Iterable[str],
    password: str | None = None,
) -> None:
    """Put the request size limit, the password and the write guard on ``server``.

    ``write_outputs``: ``"id.prop"`` of one output of each callback that writes data (its
    request's ``output`` field names it, exactly, without an ``@`` duplicate suffix).
    """
    server.config["MAX_CONTENT_LENGTH"] = max_request_bytes
    writes = frozenset(write_outputs)

    @server.errorhandler(RequestEntityTooLarge)
    def _too_large(_exc: RequestEntityTooLarge) -> tuple[flask.Response, int]:
        size = flask.request.content_length
        log.warning(
            "refused a %s-byte %s %s (limit %d bytes)",
            "unknown" if size is None else f"{size:,}",
            flask.request.method,
            flask.request.path[:200],
            max_request_bytes,
        )
        return _problem(413, f"request body over the limit of {max_request_bytes:,} bytes")

    if password is not None:
        expected = password.encode()

        @server.before_request
        def _ask_password() -> flask.Response | None:
            given = _password_of(flask.request)
            if flask.request.path in OWN_AUTH_PATHS or (
                given is not None and hmac.compare_digest(given, expected)
            ):
                return None
            answer = flask.Response("the password is needed (STRATLENS_PASSWORD)\n", 401)
            answer.headers["WWW-Authenticate"] = 'Basic realm="StratLens", charset="UTF-8"'
            return answer

    @server.before_request
    def _guard_writes() -> tuple[flask.Response, int] | None:
        request = flask.request
        if password is not None:  # every request here carried it
            return None
        if request.method != "POST" or request.path != CALLBACK_PATH or is_loopback(request):
            return None
        if not writes.isdisjoint(_outputs(request.get_data(cache=True))):
            log.warning("refused a writing callback from %s", request.remote_addr)
            return _problem(
                403,
                "this action writes data and is only allowed from this machine (127.0.0.1) "
                "until the dashboard has authentication",
            )
        return None


def _password_of(request: flask.Request) -> bytes | None:
    """The password of the request's HTTP Basic credentials (the user name is not checked)."""
    header = request.headers.get("Authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    return decoded.partition(b":")[2]


def is_loopback(request: flask.Request) -> bool:
    try:
        return ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        return False  # a unix socket or an unknown peer: treat as remote


def _outputs(body: bytes) -> set[str]:
    """The ``id.prop`` parts of a callback request's ``output`` field (``..a.b...c.d..`` for
    several outputs); empty when the body is not such a request."""
    try:
        output = json.loads(body).get("output", "")
    except (ValueError, AttributeError):
        return set()
    if not isinstance(output, str):
        return set()
    return {part for part in output.strip(".").split("...") if part}


def _problem(status: int, detail: str) -> tuple[flask.Response, int]:
    return flask.jsonify({"status": status, "detail": detail}), status
