"""The one small protocol every lip-sync engine implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from lipdub.audio.samples import Samples


@dataclass(frozen=True)
class FaceCrop:
    """One output frame's face, handed to an engine."""

    frame_index: int  # output frame number: its audio starts at frame_index / fps
    frame: np.ndarray  # the whole RGB frame (read only)
    box: tuple[int, int, int, int]  # x0, y0, x1, y1: the padded face crop, inside the frame
    shot_start: bool  # first face frame of a shot: engines drop temporal state here

    @property
    def pixels(self) -> np.ndarray:
        x0, y0, x1, y1 = self.box
        return self.frame[y0:y1, x0:x1]


@dataclass(frozen=True)
class MouthPatch:
    """What an engine gives back for one crop: new pixels and where to use them."""

    box: tuple[int, int, int, int]
    pixels: np.ndarray  # (h, w, 3) uint8, RGB, the same size as the box
    mask: np.ndarray  # (h, w) float32 in [0, 1]: 1 = take the new pixel, 0 = keep the source
    colour_match: bool  # generated pixels whose colours should be matched to the source


class LipSyncEngine(Protocol):
    name: str
    batch_size: int

    def prepare(self, audio_16k: Samples, fps: float) -> None:
        """Get ready to render with the new track (a feature-length track comes from disk,
        a slice at a time: read what is needed, never keep it whole)."""

    def study(self, frame_index: int, rgb: np.ndarray, box: tuple[int, int, int, int]) -> None:
        """Look at source faces during the analysis pass (optional; may do nothing)."""

    def study_state(self) -> dict[str, np.ndarray | float] | None:
        """What study() learned, as named arrays and numbers (None if nothing), so the
        render pass can run in another process, or another release's worker, than the
        analysis pass (lipdub.analysis_io stores it)."""

    def load_study_state(self, state: object) -> None:
        """Take back what study_state() returned."""

    def render(self, crops: list[FaceCrop]) -> list[MouthPatch]:
        """Lip-synced mouth regions for a batch of crops, in the same order."""

    def close(self) -> None:
        """Free what the engine holds (face-model graphs and their threads): a long-lived
        worker builds an engine per stage, and what is not freed accumulates."""
