"""The restoration stage: after the lip-sync engine, restore the face crop with the
person's SOVQAE and blend it back only where the engine changed pixels."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import torch

from lipdub.engines.base import MouthPatch
from lipdub.restore.model import SOVQAE, SOVQAEInference


def changed_region_mask(crop_box: tuple[int, int, int, int], patch: MouthPatch) -> np.ndarray:
    """The patch's mask (where the engine wrote) expressed in the face crop's coordinates."""
    x0, y0, x1, y1 = crop_box
    px0, py0, px1, py1 = patch.box
    mask = np.zeros((y1 - y0, x1 - x0), dtype=np.float32)
    ix0, iy0, ix1, iy1 = max(x0, px0), max(y0, py0), min(x1, px1), min(y1, py1)
    if ix1 > ix0 and iy1 > iy0:
        mask[iy0 - y0 : iy1 - y0, ix0 - x0 : ix1 - x0] = patch.mask[
            iy0 - py0 : iy1 - py0, ix0 - px0 : ix1 - px0]
    return mask


# Face crops resized to the model's resolution, (B, 3, R, R) float32 in [0, 1] -> the
# restored crops, the same shape: in this process (LocalSovqae) or on a model server.
RestorePredictor = Callable[[np.ndarray], np.ndarray]


class LocalSovqae:
    """A SOVQAE run in this process, as the network every backend serves
    (SOVQAEInference); fp16 on CUDA by default."""

    def __init__(self, model: SOVQAE, device: str = "cpu", half: bool | None = None) -> None:
        self.device = device
        self.half = device.startswith("cuda") if half is None else half
        self.network = SOVQAEInference(model.to(device)).eval()
        if self.half:
            self.network = self.network.half()

    @torch.inference_mode()
    def __call__(self, crops: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(crops).to(self.device)
        return self.network(x.half() if self.half else x).float().cpu().numpy()


class Restorer:
    name = "restore"

    def __init__(self, predictor: RestorePredictor, resolution: int,
                 batch_size: int = 16) -> None:
        self.predictor = predictor
        self.resolution = resolution
        self.batch_size = batch_size

    @classmethod
    def local(cls, model: SOVQAE, device: str = "cpu", batch_size: int = 16,
              half: bool | None = None) -> Restorer:
        """`half`: fp16 weights and activations (default: on CUDA). Its calls count in the
        inference metrics under the local backend."""
        from lipdub.inference.backends import LOCAL
        from lipdub.inference.contract import SOVQAE_PREFIX
        from lipdub.inference.metrics import Measured

        predictor = Measured(LocalSovqae(model, device, half), LOCAL, SOVQAE_PREFIX)
        return cls(predictor, model.config.resolution, batch_size)

    def restore_crops(self, crops: list[np.ndarray]) -> list[np.ndarray]:
        """Face crops of any size -> restored crops of the same sizes. What the model
        changed at its working size is added to the crop at the crop's own size, so a
        crop larger than that keeps its own detail (resizing the model's output back up
        would blur it) and a model that changes nothing returns the crop as it was."""
        out: list[np.ndarray] = []
        r = self.resolution
        for a in range(0, len(crops), self.batch_size):
            chunk = crops[a : a + self.batch_size]
            small = np.stack([cv2.resize(c, (r, r), interpolation=cv2.INTER_AREA)
                              for c in chunk])
            y = self.predictor(np.ascontiguousarray(small.transpose(0, 3, 1, 2),
                                                    dtype=np.float32) / 255.0)
            change = np.clip(y, 0, 1).transpose(0, 2, 3, 1) * 255 - small
            for c, delta in zip(chunk, change, strict=True):
                if c.shape[:2] != (r, r):
                    delta = cv2.resize(delta, (c.shape[1], c.shape[0]),
                                       interpolation=cv2.INTER_CUBIC)
                out.append(np.clip(c + delta + 0.5, 0, 255).astype(np.uint8))
        return out

    def apply(self, frames: list[np.ndarray], crop_boxes: list[tuple[int, int, int, int]],
              patches: list[MouthPatch]) -> list[np.ndarray]:
        """Restore each frame's face crop, blended in only where its patch changed pixels;
        every other pixel stays exactly as it was."""
        crops = [f[y0:y1, x0:x1] for f, (x0, y0, x1, y1) in zip(frames, crop_boxes,
                                                                 strict=True)]
        restored = self.restore_crops(crops)
        results = []
        for frame, box, patch, fixed in zip(frames, crop_boxes, patches, restored,
                                            strict=True):
            mask = changed_region_mask(box, patch)
            touched = mask > 0
            out = frame.copy()
            x0, y0, x1, y1 = box
            region = out[y0:y1, x0:x1]
            m = mask[touched][:, None]
            region[touched] = np.clip(region[touched] * (1 - m) + fixed[touched] * m + 0.5,
                                      0, 255).astype(np.uint8)
            results.append(out)
        return results
