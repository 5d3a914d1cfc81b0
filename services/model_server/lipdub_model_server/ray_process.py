"""The Ray Serve application as a child process (its own session, so that it and the Ray
processes it starts stop together): for `lipdub models serve-ray` callers that manage
processes, the tests and the benchmarks."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from lipdub_model_server import process as child
from lipdub_model_server.ray_protocol import READY_PATH


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
        child.wait_ready(self.process, f"http://{self.host}:{self.port}{READY_PATH}",
                   "The Ray Serve application", timeout_s)
        return self

    def stop(self, timeout_s: float = 30.0) -> None:
        child.stop(self.process, timeout_s)  # serve.shutdown() and ray.shutdown() run on SIGTERM
