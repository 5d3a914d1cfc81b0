"""The Wav2Lip engine: 96x96 face crops + mel windows -> generated lower faces."""

from __future__ import annotations

import cv2
import numpy as np

from lipdub.audio.mel import mel_window, wav2lip_mel
from lipdub.composite import feathered_lower_face_mask
from lipdub.engines.base import FaceCrop, MouthPatch
from lipdub.inference.local import Predictor

SIZE = 96


class Wav2LipEngine:
    name = "wav2lip"

    def __init__(self, predictor: Predictor, batch_size: int = 16) -> None:
        self.predictor = predictor
        self.batch_size = batch_size
        self._mel: np.ndarray | None = None
        self._fps = 25.0

    def prepare(self, audio_16k: np.ndarray, fps: float) -> None:
        self._mel = wav2lip_mel(audio_16k)
        self._fps = fps

    def study(self, frame_index: int, rgb: np.ndarray, box: tuple[int, int, int, int]) -> None:
        return None

    def render(self, crops: list[FaceCrop]) -> list[MouthPatch]:
        if not crops:
            return []
        assert self._mel is not None, "prepare() must run before render()"
        faces = np.stack([
            cv2.resize(c.pixels, (SIZE, SIZE), interpolation=cv2.INTER_AREA)[..., ::-1]
            for c in crops
        ]).astype(np.float32) / 255.0  # BGR, as the reference model was trained
        masked = faces.copy()
        masked[:, SIZE // 2 :] = 0.0
        face_input = np.concatenate([masked, faces], axis=3).transpose(0, 3, 1, 2)
        mel_input = np.stack([mel_window(self._mel, c.frame_index, self._fps) for c in crops])
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
