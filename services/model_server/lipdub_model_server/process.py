"""A model server run as a child process in its own session: waiting until its health
endpoint answers, and stopping it (its whole process group if it will not stop)."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import httpx

from lipdub.errors import LipDubError


class ModelServerError(LipDubError):
    code = "model_server_failed"


def wait_ready(process: subprocess.Popen, ready_url: str, what: str, timeout_s: float) -> None:
    """Return once `ready_url` answers 200; stop the server and raise if it exits first or
    is not ready within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ModelServerError(f"{what} exited with code {process.poll()} while starting.",
                                   "Read its log for the reason.")
        try:  # loopback: no proxies from the environment
            if httpx.get(ready_url, timeout=2, trust_env=False).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    stop(process)
    raise ModelServerError(f"{what} was not ready within {timeout_s:.0f} s.",
                           "Read its log for the reason.")


def stop(process: subprocess.Popen | None, timeout_s: float = 30.0) -> None:
    """SIGTERM (the server shuts down cleanly); SIGKILL to its process group after
    `timeout_s` (with its helpers: Triton's python stubs, Ray's processes)."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
