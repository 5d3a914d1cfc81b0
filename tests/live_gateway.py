"""The gateway served for real (uvicorn on a loopback port, in a thread of the test
process), for tests that need concurrent HTTP clients or a schema fetched over the wire."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from lipdub.config import Settings
from lipdub_gateway.app import create_app
from tests.http_helpers import free_port


@contextmanager
def live_gateway(settings: Settings, run_jobs: bool = False) -> Iterator[str]:
    """The gateway's base URL while the block runs."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings, run_jobs), host="127.0.0.1",
                                           port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while not server.started:
        assert time.time() < deadline and thread.is_alive(), "the gateway did not start"
        time.sleep(0.05)
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(30)

