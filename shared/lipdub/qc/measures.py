"""The QC measures, as pure functions of per-frame series and frame pairs (no video I/O)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from lipdub.faces.speaking import SPEECH_DB

MAX_LAG_FRAMES = 8  # offsets searched either way: a third of a second at 25 fps
MIN_SYNC_FRAMES = 20  # fewer known frames with speech than this: no sync estimate
PAUSE_S = 0.1  # the shortest pause the closure measure counts
CHANGED_LEVEL = 6.0  # levels (blurred, any channel): what the dub changed, above coding noise
MIN_REGION_SHARE = 0.01  # a changed region smaller than this share of the crop: no seam


@dataclass(frozen=True)
class SyncEstimate:
    offset_frames: float  # + : the picture is late (the mouth moves after the sound)
    correlation: float  # at that offset
    correlation_at_zero: float
    frames: int  # the frames it was measured on


def sync_estimate(openness: np.ndarray, level_db: np.ndarray,
                  max_lag: int = MAX_LAG_FRAMES) -> SyncEstimate | None:
    """The lag at which the mouth's opening best follows the sound's loudness (floored at
    silence, as in active-speaker detection): a picture late by d frames opens at frame i
    as the sound was at i - d. Sub-frame, by a parabola through the peak; None where too
    few frames are known or the mouth or the sound does not move."""
    envelope = np.maximum(level_db, SPEECH_DB)
    known = ~np.isnan(openness)
    if known.sum() < MIN_SYNC_FRAMES or np.nanstd(openness) < 1e-3 or envelope.std() < 1e-6:
        return None
    lags = np.arange(-max_lag, max_lag + 1)
    scores = np.array([_correlation_at(openness, envelope, int(lag)) for lag in lags])
    if not np.isfinite(scores).any():
        return None
    best = int(np.nanargmax(scores))
    offset = float(lags[best])
    if 0 < best < len(lags) - 1 and np.isfinite(scores[best - 1:best + 2]).all():
        a, b, c = scores[best - 1:best + 2]
        bend = a - 2 * b + c
        if bend < 0:
            offset += float(np.clip(0.5 * (a - c) / bend, -0.5, 0.5))
    return SyncEstimate(offset, float(scores[best]), float(scores[max_lag]), int(known.sum()))


def _correlation_at(x: np.ndarray, y: np.ndarray, lag: int) -> float:
    """corr(x[i], y[i - lag]) over the frames where both exist and x is known."""
    if lag >= 0:
        a, b = x[lag:], y[:len(y) - lag]
    else:
        a, b = x[:lag], y[-lag:]
    known = ~np.isnan(a)
    a, b = a[known], b[known]
    if len(a) < MIN_SYNC_FRAMES or a.std() < 1e-6 or b.std() < 1e-6:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


@dataclass(frozen=True)
class Closure:
    pauses: int  # pauses of PAUSE_S or longer in the line, with the face measured
    closed: int  # of those, where the mouth was closed

    @property
    def share(self) -> float | None:
        return self.closed / self.pauses if self.pauses else None


def pause_closure(openness: np.ndarray, level_db: np.ndarray, fps: float,
                  closed_below: float) -> Closure:
    """Of the line's pauses (PAUSE_S or longer below speech level), how many the lips meet
    in: the mouth's opening gets under `closed_below` at some frame of the pause (a short
    pause is over before a mouth can rest closed for all of it)."""
    silent = level_db <= SPEECH_DB
    shortest = max(2, int(np.ceil(PAUSE_S * fps)))
    pauses = closed = 0
    start = None
    for i, quiet in enumerate(np.append(silent, False)):
        if quiet and start is None:
            start = i
        elif not quiet and start is not None:
            if i - start >= shortest:
                inner = openness[start:i]
                inner = inner[~np.isnan(inner)]
                if len(inner):
                    pauses += 1
                    closed += int(inner.min() < closed_below)
            start = None
    return Closure(pauses, closed)


def closed_level(source_openness: np.ndarray, floor: float) -> float:
    """Below this a mouth counts as closed: `floor`, or the person's own resting mouth
    (the 10th percentile of their opening on the source, plus 0.02) where theirs rests
    more open (lips apart at rest, a smile showing teeth)."""
    known = source_openness[~np.isnan(source_openness)]
    return max(floor, float(np.percentile(known, 10)) + 0.02) if len(known) else floor


@dataclass(frozen=True)
class Blend:
    seam: float  # mean gradient along the changed region's edge, grey levels per pixel
    colour: float  # CIE76 chroma difference (a*, b*) between the region and its ring


def blend_measures(dub: np.ndarray, source: np.ndarray) -> tuple[Blend, Blend] | None:
    """For one face crop: the edge and colour of the region the dub changed, measured on
    the dub and, for reference, at the same place on the source. None where the dub
    changed too little to have an edge."""
    grey_dub = cv2.cvtColor(dub, cv2.COLOR_RGB2GRAY).astype(np.float32)
    grey_src = cv2.cvtColor(source, cv2.COLOR_RGB2GRAY).astype(np.float32)
    # Changed in any channel: a tint can leave the grey level as it was.
    difference = cv2.absdiff(dub, source).max(axis=2)
    changed = cv2.GaussianBlur(difference, (0, 0), 2.0) > CHANGED_LEVEL
    region = _filled_largest(changed)
    if region is None or region.mean() < MIN_REGION_SHARE:
        return None
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))
    edge = (cv2.dilate(region, kernel) - cv2.erode(region, kernel)).astype(bool)
    ring = (cv2.dilate(region, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (15, 15)))
            - region).astype(bool)
    inside = region.astype(bool)
    if not edge.any() or not ring.any():
        return None

    def measure(rgb: np.ndarray, grey: np.ndarray) -> Blend:
        gradient = cv2.magnitude(cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3),
                                 cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)) / 8.0
        lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float32)
        chroma_in = np.median(lab[inside][:, 1:], axis=0)
        chroma_ring = np.median(lab[ring][:, 1:], axis=0)
        return Blend(float(gradient[edge].mean()),
                     float(np.linalg.norm(chroma_in - chroma_ring)))

    return measure(dub, grey_dub), measure(source, grey_src)


def _filled_largest(mask: np.ndarray) -> np.ndarray | None:
    """The largest connected region of a mask, holes filled (uint8 0/1)."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), 8)
    if count < 2:
        return None
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    contours, _ = cv2.findContours((labels == largest).astype(np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_SIMPLE)
    filled = np.zeros(mask.shape, np.uint8)
    cv2.drawContours(filled, contours, -1, 1, thickness=cv2.FILLED)
    return filled


def jitter(mouth: np.ndarray) -> float | None:
    """How much the mouth shakes against the face: the median size of the second
    difference of its position in the face's own frame (eye distances per frame), so
    smooth motion (speech, head turns) costs little and frame-to-frame wobble a lot."""
    known = ~np.isnan(mouth[:, 0])
    if known.sum() < 3:
        return None
    accel = mouth[2:] - 2 * mouth[1:-1] + mouth[:-2]
    size = np.linalg.norm(accel, axis=1)
    size = size[~np.isnan(size)]
    return float(np.median(size)) if len(size) else None
