"""Where the lips, jaw and chin should be for a target articulation: source control points
and their destinations, in frame coordinates."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lipdub.engines.warp.landmarks import (
    INNER_LOWER,
    INNER_UPPER,
    JAW,
    MIDLINE_GAP,
    OUTER_LOWER,
    OUTER_UPPER,
    STILL,
    FaceShape,
)

MAX_GAP = 0.32  # widest inner-lip opening, in eye distances (a wide 'ah')
LOWER_SHARE = 0.75  # the jaw carries most of an opening; the upper lip lifts a little
MIN_GAP_PX = 0.6  # closed lips still keep triangles non-degenerate
CORNER_SPREAD = 0.05  # mouth-width change per unit of `width`, in mouth widths
CORNER_ROUNDING = 0.06  # corners come in as the mouth opens, in mouth widths


@dataclass(frozen=True)
class MouthTarget:
    src: np.ndarray  # (n, 2) control points in the frame
    dst: np.ndarray  # (n, 2) where they go
    inner_ring: np.ndarray  # (20,) rows of src/dst on the inner-lip contour, in polygon order
    midline_rows: tuple[int, int]  # rows of the inner upper / lower lip on the midline
    down: np.ndarray  # the face's downward axis
    gap_src: float  # midline inner-lip opening before and after, in pixels
    gap_dst: float


def _lip_profile(n: int) -> np.ndarray:
    """Relative opening along the mouth for n inner pairs (corner to corner, exclusive)."""
    t = (np.arange(n) + 1) / (n + 1)
    return np.sin(np.pi * t) ** 0.7


def mouth_target(shape: FaceShape, openness: float, width: float) -> MouthTarget:
    p = shape.points
    down, across = shape.down_axis, shape.eye_axis
    eye = shape.eye_distance
    moves: dict[int, np.ndarray] = {}

    # Per column of the mouth: set the inner opening to the target, split lower/upper.
    upper_inner, lower_inner = INNER_UPPER[1:-1], INNER_LOWER
    gap_src_cols = (p[lower_inner] - p[upper_inner]) @ down
    gap_dst_cols = np.maximum(openness * MAX_GAP * eye * _lip_profile(len(lower_inner)),
                              MIN_GAP_PX)
    delta = gap_dst_cols - gap_src_cols
    for col, (ui, li) in enumerate(zip(upper_inner, lower_inner, strict=True)):
        if delta[col] >= 0:  # opening: the jaw drops along the face's vertical
            moves[li] = down * LOWER_SHARE * delta[col]
            moves[ui] = -down * (1 - LOWER_SHARE) * delta[col]
        else:
            # Closing: both lips slide along the line joining them, so they meet without
            # crossing whatever the shape of the open mouth (no fold at the corners).
            across_gap = p[li] - p[ui]
            close = min(1.0, -delta[col] / max(gap_src_cols[col], 1e-6))
            moves[li] = -across_gap * LOWER_SHARE * close
            moves[ui] = across_gap * (1 - LOWER_SHARE) * close
    # The outer lip contour keeps its thickness: it follows the inner contour.
    for outer, inner in zip(OUTER_LOWER, INNER_LOWER, strict=True):
        moves[outer] = moves[inner]
    for outer, inner in zip(OUTER_UPPER[1:-1], INNER_UPPER[1:-1], strict=True):
        moves[outer] = moves[inner]
    # Corners: drop a little with the jaw, spread for "ee", come in for open/rounded shapes.
    mid = len(lower_inner) // 2
    jaw_drop = LOWER_SHARE * delta[mid]
    mouth_w = shape.mouth_width()
    spread = (CORNER_SPREAD * width - CORNER_ROUNDING * openness) * mouth_w
    for corner, side in ((OUTER_UPPER[0], -1), (INNER_UPPER[0], -1),
                         (OUTER_UPPER[-1], 1), (INNER_UPPER[-1], 1)):
        # Corners sink a little as the jaw drops; when closing they stay put, so they never
        # rise past the upper lip coming down.
        moves[corner] = down * 0.3 * max(jaw_drop, 0.0) + across * side * spread
    for index, follow in JAW.items():
        moves[index] = down * jaw_drop * follow
    for index in STILL:
        moves[index] = np.zeros(2, dtype=np.float32)

    indices = np.array(sorted(moves))
    src = p[indices].astype(np.float64)
    dst = src + np.stack([moves[i] for i in indices]).astype(np.float64)
    row_of = {int(index): row for row, index in enumerate(indices)}
    inner_ring = np.array([row_of[i] for i in INNER_UPPER + INNER_LOWER[::-1]])
    return MouthTarget(src=src, dst=dst, inner_ring=inner_ring,
                       midline_rows=(row_of[MIDLINE_GAP[0]], row_of[MIDLINE_GAP[1]]), down=down,
                       gap_src=float(gap_src_cols[mid]), gap_dst=float(gap_dst_cols[mid]))
