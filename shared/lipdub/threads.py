"""Native thread pools sized for a pipeline that already runs its stages side by side
(decoder, engine and encoder threads). OpenBLAS starts a thread per core and, after every
call, spins them on sched_yield waiting for more work; the warp engine makes many tiny
BLAS calls (a 3x3 solve per mouth triangle), so on two cores those spinning threads took a
third of the CPU: a 720p warp dub's system time fell from 8.3 s to 1.9 s and its warp stage
from 9.8 s to 4.7 s with one BLAS thread (benchmarks/RESULTS.md)."""

from __future__ import annotations

from contextlib import AbstractContextManager

from threadpoolctl import threadpool_limits


def pipeline_threads() -> AbstractContextManager:
    """Around a dub's passes: BLAS on the calling thread only (restored after)."""
    return threadpool_limits(limits=1, user_api="blas")
