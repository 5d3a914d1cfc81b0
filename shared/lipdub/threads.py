"""Native thread pools sized for a pipeline that already runs its stages side by side
(decoder, engine and encoder threads). OpenBLAS starts a thread per core and, after every
call, spins them on sched_yield waiting for more work; the warp engine makes many tiny
BLAS calls (a 3x3 solve per mouth triangle), so on two cores those spinning threads took a
third of the CPU: a 720p warp dub's system time fell from 8.3 s to 1.9 s and its warp stage
from 9.8 s to 4.7 s with one BLAS thread (benchmarks/RESULTS.md)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from threadpoolctl import threadpool_limits

# A dub's threads each hand Python's lock back and forth around short native calls (the
# engine's qhull, OpenCV and MediaPipe calls; the encoder's). With the default 5 ms switch
# interval a thread that released it for 0.1 ms waited up to 5 ms to get it back from a
# busy one: at 720p on two cores, 1 ms gave 9.94 s against 10.12 s (six alternating runs).
SWITCH_INTERVAL_S = 0.001


@contextmanager
def pipeline_threads() -> Iterator[None]:
    """Around a dub's passes: BLAS on the calling thread only, and a short switch
    interval (both restored after)."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(min(interval, SWITCH_INTERVAL_S))
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            yield
    finally:
        sys.setswitchinterval(interval)
