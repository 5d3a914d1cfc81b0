"""Progress and timing of a dub's stages, reported to whoever runs it (CLI bar, job row)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol

# A cast's second analysis pass (lipdub.scene): how each person's mouth opens.
MOUTHS = "mouths"


class ProgressSink(Protocol):
    def start(self, stage: str, total: int) -> None: ...
    def advance(self, stage: str, amount: int = 1) -> None: ...
    def finish(self, stage: str) -> None: ...


class NullProgress:
    def start(self, stage: str, total: int) -> None:
        pass

    def advance(self, stage: str, amount: int = 1) -> None:
        pass

    def finish(self, stage: str) -> None:
        pass


@dataclass
class StageTiming:
    seconds: float = 0.0
    frames: int = 0

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


@dataclass
class StageClock:
    """Accumulates wall time per stage, also when stages interleave frame by frame."""

    stages: dict[str, StageTiming] = field(default_factory=dict)

    @contextmanager
    def time(self, stage: str, frames: int = 0) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            timing = self.stages.setdefault(stage, StageTiming())
            timing.seconds += time.perf_counter() - started
            timing.frames += frames


class Throttle:
    """At most one write per `interval_s` (progress rows are written from hot loops),
    unless forced."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s, self._last = interval_s, 0.0

    def due(self, force: bool = False) -> bool:
        now = time.monotonic()
        if not force and now - self._last < self.interval_s:
            return False
        self._last = now
        return True
