"""The containerless model server: the real Triton Inference Server bundled in the
`nvidia-pytriton` wheel, run directly on the model repository. Its python backend (the only
one the wheel ships) serves the torch models; GPU where present, CPU otherwise.

What the bundled binary needs, found by trial on this platform: the python backend and
its stub for this interpreter copied into a backend folder of our own; the interpreter's
libpython and the wheel's own libraries first on LD_LIBRARY_PATH (else the stub picks up
an older system libpython); this venv's bin first on PATH (the stub's Python finds the
venv's packages, torch included, through it)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from lipdub_model_server import process as child
from lipdub_model_server.process import ModelServerError


def _pytriton_root() -> Path:
    # Found, not imported: only the server binary is used, and the package's own import
    # pulls in its Python client stack (zmq, sh, ...), which a server host need not have.
    spec = importlib.util.find_spec("pytriton")
    if spec is None or spec.origin is None:
        raise ModelServerError("nvidia-pytriton is not installed.",
                               "Install the pinned set (scripts/setup.sh).")
    return Path(spec.origin).parent / "tritonserver"


# LipDub's python-based backends (server-side code; model folders hold only weights).
OWN_BACKENDS = Path(__file__).parent / "triton_backends"


def backend_directory(cache: Path | None = None) -> Path:
    """A backend folder holding the wheel's python backend, this Python's stub, and
    LipDub's python-based backends (refreshed each time: they are part of this release)."""
    root = _pytriton_root()
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = root / "python_backend_stubs" / version / "triton_python_backend_stub"
    if not stub.is_file():
        raise ModelServerError(f"nvidia-pytriton has no python backend stub for Python "
                               f"{version}.", "Use Python 3.11 (the platform's pin).")
    target = (cache or Path(tempfile.gettempdir()) / "lipdub-triton-backends") / version
    python = target / "python"
    if not (python / "triton_python_backend_stub").is_file():
        shutil.copytree(root / "backends", target, dirs_exist_ok=True)
        shutil.copy2(stub, python / "triton_python_backend_stub")
    for backend in OWN_BACKENDS.iterdir():
        if (backend / "model.py").is_file():
            (target / backend.name).mkdir(exist_ok=True)
            shutil.copy2(backend / "model.py", target / backend.name / "model.py")
    return target


def server_environment() -> dict[str, str]:
    libs = [sysconfig.get_config_var("LIBDIR"),
            str(Path(_pytriton_root()).parent.parent / "nvidia_pytriton.libs")]
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = ":".join([*libs, env.get("LD_LIBRARY_PATH", "")]).rstrip(":")
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    return env


@dataclass
class TritonServer:
    """One tritonserver process. Models load on demand (explicit model control) besides
    those named in `load`."""

    repository: Path
    http_port: int = 8000
    grpc_port: int = 8001
    metrics_port: int = 8002
    host: str = "127.0.0.1"
    load: list[str] = field(default_factory=list)
    process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        binary = _pytriton_root() / "bin" / "tritonserver"
        command = [str(binary), f"--model-repository={self.repository}",
                   f"--backend-directory={backend_directory()}",
                   f"--cache-directory={_pytriton_root() / 'caches'}",
                   "--model-control-mode=explicit",
                   f"--http-address={self.host}", f"--http-port={self.http_port}",
                   f"--grpc-address={self.host}", f"--grpc-port={self.grpc_port}",
                   f"--metrics-address={self.host}", f"--metrics-port={self.metrics_port}",
                   "--log-warning=true", "--log-info=false"]
        return command + [f"--load-model={name}" for name in self.load]

    def start(self, timeout_s: float = 120.0, log: Path | None = None) -> TritonServer:
        if not self.repository.is_dir():
            raise ModelServerError(f"No model repository at '{self.repository}'.",
                                   "Pass --repository (the repo's model_repository/).")
        out = log.open("ab") if log else None  # None: the server logs where we do
        self.process = subprocess.Popen(self.command(), env=server_environment(),
                                        stdout=out, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        self.wait_ready(timeout_s)
        return self

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"{self.host}:{self.grpc_port}"

    def wait_ready(self, timeout_s: float) -> None:
        assert self.process is not None
        child.wait_ready(self.process, f"{self.http_url}/v2/health/ready", "tritonserver",
                         timeout_s)

    def stop(self, timeout_s: float = 30.0) -> None:
        child.stop(self.process, timeout_s)
