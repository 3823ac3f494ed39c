"""The browser fixtures' count of requests in flight (conftest.InFlight) ends every request
however the server ends it: close() (the WSGI rule), or the body freed without close()
(werkzeug's development server, a client gone while it drains the socket)."""

from __future__ import annotations

import gc

import pytest

from tests.dashboard.conftest import InFlight


def _app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return iter([b"a", b"b"])


def test_a_request_ends_at_close_once():
    counter = InFlight(_app)
    body = counter({"PATH_INFO": "/x"}, lambda *a: None)
    assert counter.count == 1
    assert list(body) == [b"a", b"b"]
    body.close()
    body.close()
    assert counter.count == 0
    del body
    gc.collect()
    assert counter.count == 0  # freed after close: not counted twice


def test_a_request_whose_body_is_freed_without_close_ends():
    counter = InFlight(_app)
    first = counter({"PATH_INFO": "/a"}, lambda *a: None)
    second = counter({"PATH_INFO": "/b"}, lambda *a: None)
    assert counter.count == 2
    del first
    gc.collect()
    assert counter.count == 1
    assert counter.describe().startswith("/b on thread")
    second.close()
    assert counter.count == 0


def test_a_request_whose_app_raised_ends():
    def broken(environ, start_response):
        raise RuntimeError("no")

    counter = InFlight(broken)
    with pytest.raises(RuntimeError, match="no"):
        counter({"PATH_INFO": "/x"}, lambda *a: None)
    assert counter.count == 0
