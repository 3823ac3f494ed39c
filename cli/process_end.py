"""The end of a command's process, made quicker (``app.py`` calls it after the command).

A command's interpreter, once the command is done, spends ~0.15-0.2 s of its ~0.8 s (``python
app.py trades accounts``; more after a large import) in the garbage collector's passes over
every object the libraries made (pandas, SQLAlchemy, numba, pyarrow: a few hundred thousand),
which it runs while it tears the modules down. :func:`end_command` closes every engine's
connections first (PostgreSQL's sessions end with the protocol's goodbye, as at a normal exit),
then freezes the objects (``gc.freeze``): the collector's passes skip them. Everything else
happens as before: non-daemon threads are joined, ``atexit`` handlers run (logging flushes),
objects freed by their reference counts are finalized. What is no longer done is finding
reference cycles among the frozen objects, which the process's end frees anyway; a file
written must be closed by its writer (ours are, by ``with``).
"""

from __future__ import annotations

import gc


def end_command() -> None:
    """Before the interpreter exits after a command (see the module)."""
    from database.session import dispose_engines

    dispose_engines()
    gc.freeze()


__all__ = ["end_command"]
