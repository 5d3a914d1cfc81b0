"""The render pass keeps one batch's engine work in flight while it composites and encodes
the batch before (a model server's round trip hidden behind CPU work), batches in order,
each once."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from lipdub.engines.base import FaceCrop, MouthPatch
from lipdub.pipeline import dub
from tests.media_helpers import read_frames

BATCH = 8


class DarkeningEngine:
    """Darkens every crop's pixels a little; records when each batch's render starts."""

    name = "darken"
    batch_size = BATCH

    def __init__(self) -> None:
        self.started: list[threading.Event] = []
        self.order: list[int] = []

    def prepare(self, audio_16k: np.ndarray, fps: float) -> None:
        return None

    def study(self, frame_index: int, rgb: np.ndarray, box: tuple[int, int, int, int]) -> None:
        return None

    def study_state(self) -> None:
        return None

    def load_study_state(self, state: object) -> None:
        return None

    def close(self) -> None:
        return None

    def render(self, crops: list[FaceCrop]) -> list[MouthPatch]:
        self.order += [c.frame_index for c in crops]
        self.started.append(threading.Event())
        self.started[-1].set()
        return [MouthPatch(box=c.box, pixels=(c.pixels // 2).astype(np.uint8),
                           mask=np.ones(c.pixels.shape[:2], np.float32), colour_match=False)
                for c in crops]


class WaitsForNextRender:
    """A progress sink whose first lip-sync advance (the first batch written) waits for the
    second batch's render to have started: it has, if renders run ahead of encoding."""

    def __init__(self, engine: DarkeningEngine) -> None:
        self.engine = engine
        self.overlapped: bool | None = None

    def start(self, stage: str, total: int) -> None:
        return None

    def advance(self, stage: str, amount: int = 1) -> None:
        if stage == "lip-sync" and self.overlapped is None:
            for _ in range(50):  # up to 5 s; at once when the renders overlap
                if len(self.engine.started) >= 2:
                    break
                time.sleep(0.1)
            self.overlapped = len(self.engine.started) >= 2

    def finish(self, stage: str) -> None:
        return None


def test_the_next_batch_renders_while_the_previous_is_written(talking_clip: Path,
                                                              short_voice: Path,
                                                              tmp_path: Path) -> None:
    engine = DarkeningEngine()
    progress = WaitsForNextRender(engine)
    report = dub(talking_clip, short_voice, tmp_path / "out.mp4", engine, progress=progress)
    assert progress.overlapped is True
    assert engine.order == sorted(engine.order)  # batches rendered in order, once each
    assert len(engine.order) == report.face_frames > 2 * BATCH
    frames = read_frames(tmp_path / "out.mp4")
    assert len(frames) == report.output_frames
