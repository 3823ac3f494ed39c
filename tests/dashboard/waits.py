"""How long a browser test waits for a condition before it fails.

Browser tests wait for conditions, never for fixed times, so a generous bound costs nothing
when things go well: it only decides how long a real failure takes to report. It has to
cover the server's work on a busy 2-core machine (a first layered figure, a background run
in another process, a replay's next closes while other tabs tick).
"""

WAIT_S = 120


def until(condition, timeout: float = WAIT_S, poll: float = 0.1, *, seen=None):
    """``condition()``'s first truthy value, polled every ``poll`` s for up to ``timeout`` s.

    On timeout the AssertionError says what was awaited (the condition's source line) and what
    was last seen: ``seen()`` when given (e.g. the status line's text), else the condition's
    last value, and the last exception the condition raised (an element not there yet).
    """
    import inspect
    import time

    deadline = time.monotonic() + timeout
    last, error = None, None
    while True:
        try:
            last = condition()
            if last:
                return last
            error = None
        except Exception as exc:
            error = exc
        if time.monotonic() >= deadline:
            break
        time.sleep(poll)
    try:
        awaited = " ".join(inspect.getsource(condition).split())[:300]
    except (OSError, TypeError):
        awaited = repr(condition)
    try:
        shown = seen() if seen is not None else last
    except Exception as exc:
        shown = f"<seen() failed: {exc}>"
    problem = f"; last error: {type(error).__name__}: {error}" if error is not None else ""
    raise AssertionError(f"waited {timeout:g} s for: {awaited}; last saw {shown!r}{problem}")


def scroll_to(driver, css: str, timeout: float = WAIT_S) -> None:
    """Scroll the element ``css`` into view once it is on the page: a section of a panel may
    come in after another one a test waited for (CI once: the trades grid after the KPIs)."""
    script = f"const e = document.querySelector({css!r}); if (e) e.scrollIntoView(); return !!e;"
    until(lambda: driver.execute_script(script), timeout=timeout)
