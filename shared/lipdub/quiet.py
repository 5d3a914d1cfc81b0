"""Third-party native log lines kept off the terminal. MediaPipe's C++ (absl/glog) and
TensorFlow Lite write straight to the process's stderr (file descriptor 2) whenever a
graph or an interpreter starts, which in a dub is on a worker thread, mid progress bar; no
Python setting turns them off. So fd 2 becomes a pipe read by a thread that drops those
lines (or, verbose, passes everything), while Python's own sys.stderr (our progress,
summary, warnings, errors; tracebacks and crash dumps) writes to the real stderr directly,
never through the filter."""

from __future__ import annotations

import atexit
import faulthandler
import io
import os
import re
import sys
import threading

# absl/glog ("W0000 00:00:1795662485.029419   13473 file.cc:114] ...") and TFLite's notes.
NATIVE_NOISE = re.compile(
    rb"^(?:[IWEF]\d{4} [\d:.]+\s+\d+ [\w./-]+:\d+\] "
    rb"|INFO: Created TensorFlow Lite"
    rb"|WARNING: All log messages before absl::InitializeLog)")


class _Filter:
    def __init__(self) -> None:
        self.verbose = False
        self.real = -1
        self.pump: threading.Thread | None = None


_filter = _Filter()


def filter_native_stderr() -> None:
    """From now on, drop third-party native log lines from this process's stderr (once;
    does nothing where there is no usable stderr)."""
    if _filter.pump is not None:
        return
    try:
        real = os.dup(2)
    except OSError:
        return
    sys.stderr.flush()
    sys.stderr = io.TextIOWrapper(io.FileIO(real, "w", closefd=False), line_buffering=True,
                                  errors="backslashreplace")
    faulthandler.enable(file=sys.stderr)  # a crash's dump must not wait on the pump
    read, write = os.pipe()
    os.dup2(write, 2)
    os.close(write)
    _filter.real = real
    _filter.pump = threading.Thread(target=_pump, args=(read,), daemon=True,
                                    name="lipdub-stderr-filter")
    _filter.pump.start()
    atexit.register(_stop)


def show_native_logs() -> None:
    """--verbose: pass every line through."""
    _filter.verbose = True


def _pump(read: int) -> None:
    with os.fdopen(read, "rb") as pipe:
        for line in pipe:
            if _filter.verbose or (line.strip() and not NATIVE_NOISE.match(line)):
                os.write(_filter.real, line)


def _stop() -> None:
    """At exit: fd 2 back to the real stderr, which ends the pipe, and the pump drains."""
    sys.stderr.flush()
    os.dup2(_filter.real, 2)
    if _filter.pump is not None:
        _filter.pump.join(timeout=2)
