"""How long a browser test waits for a condition before it fails.

Browser tests wait for conditions, never for fixed times, so a generous bound costs nothing
when things go well: it only decides how long a real failure takes to report. It has to
cover the server's work on a busy 2-core machine (a first layered figure, a background run
in another process, a replay's next closes while other tabs tick).
"""

WAIT_S = 120
