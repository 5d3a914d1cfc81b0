"""Length mismatch between footage and new audio: which source frame each output frame
shows, and how long the output is (`--sync-mode`)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np


class SyncMode(StrEnum):
    CUT_OFF = "cut_off"  # as long as the shorter of the two
    LOOP = "loop"  # repeat the video forwards to cover the audio
    BOUNCE = "bounce"  # repeat it forwards-backwards to cover the audio
    SILENCE = "silence"  # keep the whole video; pad (or trim) the audio with silence


@dataclass(frozen=True)
class SyncPlan:
    mode: SyncMode
    source_indices: np.ndarray  # (output frames,) int32: the source frame for each output frame

    @property
    def frame_count(self) -> int:
        return len(self.source_indices)


def plan_sync(video_frames: int, audio_seconds: float, fps: float, mode: SyncMode) -> SyncPlan:
    audio_frames = max(1, round(audio_seconds * fps))
    if mode is SyncMode.SILENCE:
        indices = np.arange(video_frames)
    elif mode is SyncMode.CUT_OFF:
        indices = np.arange(min(video_frames, audio_frames))
    elif mode is SyncMode.LOOP:
        indices = np.arange(audio_frames) % video_frames
    else:
        period = max(1, 2 * video_frames - 2)  # the end frames are not shown twice in a row
        phase = np.arange(audio_frames) % period
        indices = np.where(phase < video_frames, phase, period - phase)
    return SyncPlan(mode=mode, source_indices=indices.astype(np.int32))
