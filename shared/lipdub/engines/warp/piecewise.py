"""Fold-free piecewise-affine image warp over a Delaunay triangulation of control points."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial import Delaunay

_SUBPIXEL_BITS = 4


@dataclass(frozen=True)
class Warp:
    triangles: np.ndarray  # (t, 3) indices into the control points
    src: np.ndarray  # (n, 2) region coordinates
    dst: np.ndarray  # (n, 2) where the points actually go (possibly short of the request)


def signed_areas(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    a, b, c = (points[triangles[:, k]] for k in range(3))
    return 0.5 * ((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1])
                  - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]))


# A triangle squeezed below this area (px^2) covers no pixel: lips pressed shut do this.
SLIVER_AREA = 0.5


def folded_triangles(src: np.ndarray, dst: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Triangles whose orientation flips between source and destination (a fold)."""
    a_src, a_dst = signed_areas(src, triangles), signed_areas(dst, triangles)
    return (np.sign(a_src) != np.sign(a_dst)) & (np.abs(a_dst) > SLIVER_AREA)


def fold_free_warp(src: np.ndarray, dst: np.ndarray, rounds: int = 12) -> Warp | None:
    """Triangulate the source points and move them towards `dst`. Where a triangle would
    fold, only its own corners are held back, round by round, so the rest of the warp
    keeps its full strength. None when no fold-free warp is found (frame left unchanged)."""
    triangles = Delaunay(src).simplices
    strength = np.ones(len(src))
    for _ in range(rounds):
        moved = src + (dst - src) * strength[:, None]
        folded = folded_triangles(src, moved, triangles)
        if not folded.any():
            return Warp(triangles=triangles, src=src, dst=moved)
        strength[np.unique(triangles[folded])] *= 0.7
    for scale in (0.5, 0.25, 0.1):  # last resort: a weaker warp everywhere
        moved = src + (dst - src) * (strength * scale)[:, None]
        if not folded_triangles(src, moved, triangles).any():
            return Warp(triangles=triangles, src=src, dst=moved)
    return None


def backward_maps(warp: Warp, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """For every destination pixel, where to sample the source (identity outside the mesh)."""
    index = np.full((height, width), -1, dtype=np.int32)
    factor = 1 << _SUBPIXEL_BITS
    areas = signed_areas(warp.dst, warp.triangles)
    usable = np.abs(areas) >= 1e-3  # degenerate triangles cover no pixel
    affines = np.zeros((len(warp.triangles), 2, 3), dtype=np.float64)
    corners_dst = warp.dst[warp.triangles[usable]]  # (t, 3, 2)
    corners_src = warp.src[warp.triangles[usable]]
    lhs = np.concatenate([corners_dst, np.ones((len(corners_dst), 3, 1))], axis=2)
    # Per triangle: [x y 1] @ A = source position, solved for all triangles at once.
    affines[usable] = np.linalg.solve(lhs, corners_src).transpose(0, 2, 1)
    fixed = np.round(warp.dst * factor).astype(np.int32)
    for k in np.nonzero(usable)[0]:
        cv2.fillConvexPoly(index, fixed[warp.triangles[k]], int(k), shift=_SUBPIXEL_BITS)
    ys, xs = np.mgrid[0:height, 0:width]
    map_x, map_y = xs.astype(np.float32), ys.astype(np.float32)
    inside = index >= 0
    m = affines[index[inside]]
    px, py = xs[inside], ys[inside]
    map_x[inside] = m[:, 0, 0] * px + m[:, 0, 1] * py + m[:, 0, 2]
    map_y[inside] = m[:, 1, 0] * px + m[:, 1, 1] * py + m[:, 1, 2]
    return map_x, map_y
