"""The API documentation works on a closed network: /docs (Swagger UI) and /redoc load
their scripts from the gateway itself. Checked in a real headless Chromium (shipped inside
an npm package, installed by scripts/test.sh) that may reach nothing but the gateway."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx

from lipdub.config import Settings
from tests.live_gateway import live_gateway
from tests.test_platform_api import embedded_database

BROWSER = Path(__file__).parent / "browser"


def _render(url: str, kind: str) -> dict:
    assert (BROWSER / "node_modules").is_dir(), (
        "the docs browser is not installed: run bash scripts/test.sh")
    done = subprocess.run(["node", "docs_page.mjs", url, kind], cwd=BROWSER,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.splitlines()[-1])


def test_api_docs_render_from_the_gateway_with_no_route_out(tmp_path: Path) -> None:
    url, _, _ = embedded_database(tmp_path)
    with live_gateway(Settings(database_url=url, storage_dir=tmp_path / "store")) as base:
        schema = httpx.get(f"{base}/openapi.json").json()
        operations = [(path, method) for path, item in schema["paths"].items()
                      for method in item]
        swagger = _render(f"{base}/docs", "swagger")
        redoc = _render(f"{base}/redoc", "redoc")
    assert swagger["outside"] == [] and redoc["outside"] == []  # nothing tried to leave
    # Every operation of the API is listed, on both pages.
    assert sorted(swagger["operations"]) == sorted(path for path, _ in operations)
    shown = [o for o in redoc["operations"] if o.startswith("operation/")]
    assert len(shown) == len(operations) and "/v1/jobs" in schema["paths"]
