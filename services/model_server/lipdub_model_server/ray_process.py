"""The Ray Serve application as a child process (its own session, so that it and the Ray
processes it starts stop together): for `lipdub models serve-ray` callers that manage
processes, the tests and the benchmarks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from lipdub_model_server.ray_protocol import READY_PATH
from lipdub_model_server.triton_server import ModelServerError


@dataclass
class RayServeProcess:
    repository: Path
    port: int = 8100
    host: str = "127.0.0.1"
    resident: int = 8
    process: subprocess.Popen | None = None

    @property
    def spec(self) -> str:
        return f"ray+http://{self.host}:{self.port}"

    def start(self, timeout_s: float = 180.0, log: Path | None = None) -> RayServeProcess:
        out = log.open("ab") if log else None
        self.process = subprocess.Popen(
            [sys.executable, "-m", "lipdub_model_server.ray_server",
             f"--repository={self.repository}", f"--host={self.host}",
             f"--port={self.port}", f"--resident={self.resident}"],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ModelServerError(f"The Ray Serve application exited with code "
                                       f"{self.process.poll()} while starting.",
                                       "Read its log for the reason.")
            try:
                url = f"http://{self.host}:{self.port}{READY_PATH}"
                if httpx.get(url, timeout=2, trust_env=False).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        self.stop()
        raise ModelServerError(f"The Ray Serve application was not ready within "
                               f"{timeout_s:.0f} s.", "Read its log for the reason.")

    def stop(self, timeout_s: float = 30.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()  # serve.shutdown() and ray.shutdown() run on SIGTERM
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
