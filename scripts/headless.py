"""Chromium flags for headless runs on these machines (tests and screenshots share them)."""

# no display; root needs --no-sandbox; the closed network refuses Chromium's background calls
HEADLESS_CHROME_ARGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
