"""What starts must start light: the gateway (and the job plans it builds) imports no
model library; the media work imports them when a stage runs it."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "mediapipe", "cv2", "vector_quantize_pytorch")

CHECK = """
import sys, time
started = time.perf_counter()
import lipdub_gateway.app
from lipdub.config import Settings
from lipdub.jobs.context import JobContext
print(round(time.perf_counter() - started, 2), *[m for m in sys.argv[1:] if m in sys.modules])
"""


def test_the_gateway_imports_no_model_library() -> None:
    done = subprocess.run([sys.executable, "-c", CHECK, *HEAVY], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    seconds, *loaded = done.stdout.split()
    print(f"gateway imported in {seconds} s")
    assert loaded == [], f"the gateway imported {loaded}"
