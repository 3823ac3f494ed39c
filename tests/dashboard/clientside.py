"""Run the page's clientside functions (dashboard/assets/chart_view.js) in node, with the few
browser globals they touch stubbed: ``run_clientside("JSON.stringify(...)")``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

CHART_VIEW_JS = Path(__file__).resolve().parents[2] / "dashboard" / "assets" / "chart_view.js"
NO_UPDATE = "<skip>"  # what window.dash_clientside.no_update is in these runs


def run_clientside(body: str) -> object:
    """The JSON ``body`` logs (with ``console.log``) after chart_view.js is loaded; skips when
    node is not installed."""
    node = shutil.which("node")
    if node is None:
        if os.environ.get("REQUIRE_BROWSER") == "1":  # CI: a skip there is a failure
            pytest.fail("REQUIRE_BROWSER=1 but node is not installed (apt-get install nodejs)")
        pytest.skip("node is not installed")
    script = (
        f"global.window = {{dash_clientside: {{no_update: {json.dumps(NO_UPDATE)}}},"
        " requestAnimationFrame() {}};"
        "global.document = {querySelector() { return null; }, addEventListener() {},"
        " visibilityState: 'visible'};"
        f"require({json.dumps(str(CHART_VIEW_JS))});" + body
    )
    done = subprocess.run([node, "-e", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)
