"""The inside of an opened mouth: dark cavity shading, with the person's own teeth taken
from the most open mouth seen in the source footage when there is one."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from lipdub.engines.warp.landmarks import INNER_LOWER, INNER_UPPER, FaceShape

CAVITY_RGB = np.array([44.0, 12.0, 14.0], dtype=np.float32)
MIN_REFERENCE_GAP = 0.07  # in eye distances: a mouth this open shows its teeth


@dataclass(frozen=True)
class TeethReference:
    pixels: np.ndarray  # (h, w, 3) uint8: the inner-mouth bounding box of the open frame
    mask: np.ndarray  # (h, w) float32: the inner-lip polygon inside that box
    openness: float  # gap / eye distance of that frame


def capture_reference(frame: np.ndarray, shape: FaceShape) -> TeethReference | None:
    gap = shape.lip_gap() / max(shape.eye_distance, 1e-6)
    if gap < MIN_REFERENCE_GAP:
        return None
    polygon = shape.points[INNER_UPPER + INNER_LOWER[::-1]]
    x0, y0 = np.floor(polygon.min(0)).astype(int)
    x1, y1 = np.ceil(polygon.max(0)).astype(int) + 1
    h, w = frame.shape[:2]
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if x1 - x0 < 4 or y1 - y0 < 3:
        return None
    mask = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)
    cv2.fillPoly(mask, [np.round(polygon - [x0, y0]).astype(np.int32)], 255)
    return TeethReference(pixels=frame[y0:y1, x0:x1].copy(),
                          mask=mask.astype(np.float32) / 255.0, openness=gap)


def fill_interior(
    region: np.ndarray,
    polygon: np.ndarray,
    gap_src: float,
    gap_dst: float,
    reference: TeethReference | None,
) -> np.ndarray:
    """Paint the opened mouth into `region` (in place); returns the painted mask (h, w)."""
    h, w = region.shape[:2]
    if gap_dst <= gap_src + 1.0:
        return np.zeros((h, w), dtype=np.float32)
    poly_mask = np.zeros((h, w), dtype=np.uint8)
    cv2.fillPoly(poly_mask, [np.round(polygon).astype(np.int32)], 255)
    ys, xs = np.nonzero(poly_mask)
    if len(ys) == 0:
        return np.zeros((h, w), dtype=np.float32)
    bx0, by0, bx1, by1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    bw, bh = bx1 - bx0, by1 - by0
    # Cavity: darker towards the middle, as the throat is.
    yy, xx = np.mgrid[0:bh, 0:bw].astype(np.float32)
    radial = ((xx - bw / 2) / (bw / 2 + 1e-6)) ** 2 + ((yy - bh / 2) / (bh / 2 + 1e-6)) ** 2
    shade = 0.55 + 0.45 * np.clip(radial, 0, 1)
    fill = CAVITY_RGB[None, None, :] * shade[..., None]
    if reference is not None:
        # The person's own teeth: scale to this mouth's width, hang from the upper lip.
        scale = bw / reference.pixels.shape[1]
        th = max(1, min(bh, int(round(reference.pixels.shape[0] * scale))))
        teeth = cv2.resize(reference.pixels, (bw, th), interpolation=cv2.INTER_LINEAR)
        tmask = cv2.resize(reference.mask, (bw, th), interpolation=cv2.INTER_LINEAR)[..., None]
        fill[:th] = teeth.astype(np.float32) * tmask + fill[:th] * (1 - tmask)
    # How much is new: all of it when the source mouth was shut, little when it was open.
    amount = float(np.clip(1.0 - max(gap_src, 0.0) / gap_dst, 0.0, 1.0)) ** 0.5
    alpha = cv2.GaussianBlur(poly_mask.astype(np.float32) / 255.0, (0, 0), 0.8) * amount
    a = alpha[by0:by1, bx0:bx1, None]
    target = region[by0:by1, bx0:bx1].astype(np.float32)
    region[by0:by1, bx0:bx1] = np.clip(target * (1 - a) + fill * a + 0.5, 0, 255).astype(np.uint8)
    return alpha
