"""Import MediaPipe's legacy solutions (the API whose face models ship inside the wheel),
quietly: its C++ start-up logging and a protobuf deprecation warning are noise for users."""

from __future__ import annotations

import contextlib
import os
import sys
import types
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
warnings.filterwarnings("ignore", message="SymbolDatabase.GetPrototype")



@contextlib.contextmanager
def _no_matplotlib() -> Iterator[None]:
    """MediaPipe's package import loads matplotlib (0.3 s, a fifth of a dub's start-up) for
    a 3-D plotting helper LipDub never calls: while it imports, matplotlib is an empty
    placeholder, removed after (a later real import of matplotlib is unaffected)."""
    placeholders = {name: types.ModuleType(name) for name in ("matplotlib", "matplotlib.pyplot")
                    if name not in sys.modules}
    if len(placeholders) == 2:
        placeholders["matplotlib"].pyplot = placeholders["matplotlib.pyplot"]
    sys.modules.update(placeholders)
    try:
        yield
    finally:
        for name, placeholder in placeholders.items():
            if sys.modules.get(name) is placeholder:
                del sys.modules[name]


with _no_matplotlib():
    from mediapipe.python.solutions import face_detection, face_mesh  # noqa: E402


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """MediaPipe's graphs log to the process's stderr (fd 2) from C++ when they start; those
    lines cannot be turned off from Python, so fd 2 points at /dev/null meanwhile."""
    try:
        saved = os.dup(2)
    except OSError:  # no usable stderr: nothing to hide
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class QuietSolution:
    """A MediaPipe solution whose start-up chatter (construction and first frame) is hidden."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        with native_stderr_silenced():
            self._solution = factory()
        self._started = False

    def process(self, rgb: np.ndarray) -> Any:
        image = np.ascontiguousarray(rgb)
        if self._started:
            return self._solution.process(image)
        with native_stderr_silenced():
            result = self._solution.process(image)
        self._started = True
        return result

    def close(self) -> None:
        self._solution.close()


__all__ = ["QuietSolution", "face_detection", "face_mesh"]
