"""Developer tools: screenshots of the running app, headless Chromium flags."""
