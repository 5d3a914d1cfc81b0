"""The Wav2Lip engine: 96x96 face crops + mel windows -> generated lower faces."""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

from lipdub.audio.mel import mel_columns, mel_frame_count, mel_window, mel_window_start
from lipdub.audio.samples import Samples
from lipdub.composite import feathered_lower_face_mask
from lipdub.engines.base import FaceCrop, MouthPatch

if TYPE_CHECKING:  # the module itself is torch-free: the model loads beside the analysis
    from lipdub.inference.local import Predictor

SIZE = 96
MEL_WIDTH = 16  # mel columns (0.2 s) per video frame


class Wav2LipEngine:
    name = "wav2lip"

    def __init__(self, predictor: Predictor | None, batch_size: int = 16) -> None:
        """`predictor` None: the analysis pass only (render() needs the model)."""
        self.predictor = predictor
        self.batch_size = batch_size
        self._audio: Samples | None = None
        self._columns = 0
        self._fps = 25.0

    def prepare(self, audio_16k: Samples, fps: float) -> None:
        # Mel columns are computed per batch from the audio they cover: memory stays flat
        # however long the track (the whole spectrogram of a film would be hundreds of MB).
        self._audio = audio_16k
        self._columns = mel_frame_count(len(audio_16k))
        self._fps = fps

    def _mel_windows(self, frame_indices: list[int]) -> np.ndarray:
        assert self._audio is not None, "prepare() must run before render()"
        starts = [mel_window_start(k, self._fps, self._columns, MEL_WIDTH) for k in frame_indices]
        first = min(starts)
        span = mel_columns(self._audio, first, max(starts) + MEL_WIDTH)
        if span.shape[1] < MEL_WIDTH:  # the whole track is under 0.2 s: one padded window
            return np.stack([mel_window(span, 0, self._fps, MEL_WIDTH)] * len(starts))
        return np.stack([span[:, s - first : s - first + MEL_WIDTH] for s in starts])

    def study(self, frame_index: int, rgb: np.ndarray, box: tuple[int, int, int, int]) -> None:
        # A model that loads beside the analysis pass starts loading now (and reports
        # a failed load at once, not when a film's analysis ends).
        start = getattr(self.predictor, "start", None)
        if start is not None:
            start()

    def study_state(self) -> None:
        return None  # Wav2Lip needs nothing from the analysis pass

    def load_study_state(self, state: object) -> None:
        return None

    def close(self) -> None:
        return None  # the predictor is the model's owner

    def render(self, crops: list[FaceCrop]) -> list[MouthPatch]:
        loaded = getattr(self.predictor, "loaded", None)
        if loaded is not None:
            loaded()  # a model that failed to load fails the dub, even one with no face
        if not crops:
            return []
        faces = np.stack([
            cv2.resize(c.pixels, (SIZE, SIZE), interpolation=cv2.INTER_AREA)[..., ::-1]
            for c in crops
        ]).astype(np.float32) / 255.0  # BGR, as the reference model was trained
        masked = faces.copy()
        masked[:, SIZE // 2 :] = 0.0
        face_input = np.concatenate([masked, faces], axis=3).transpose(0, 3, 1, 2)
        mel_input = self._mel_windows([c.frame_index for c in crops])
        assert self.predictor is not None, "an analysis-only engine cannot render"
        generated = self.predictor(mel_input[:, None].astype(np.float32),
                                   np.ascontiguousarray(face_input))
        patches = []
        for crop, out in zip(crops, generated, strict=True):
            x0, y0, x1, y1 = crop.box
            rgb = (out.transpose(1, 2, 0)[..., ::-1] * 255.0).clip(0, 255).astype(np.uint8)
            rgb = cv2.resize(rgb, (x1 - x0, y1 - y0), interpolation=cv2.INTER_CUBIC)
            patches.append(MouthPatch(
                box=crop.box, pixels=rgb,
                mask=feathered_lower_face_mask(y1 - y0, x1 - x0), colour_match=True,
            ))
        return patches
