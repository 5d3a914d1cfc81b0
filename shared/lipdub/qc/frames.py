"""The QC pass: a finished dub decoded beside its source, frame for frame, each dubbed
face measured on both (Face Mesh lips, the changed region's edge and colour)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lipdub.engines.warp.landmarks import (
    NOSE_TIP,
    OUTER_LOWER,
    OUTER_UPPER,
    FaceShape,
    LandmarkTracker,
)
from lipdub.faces.crop import crop_box
from lipdub.faces.track import FaceTrack
from lipdub.media.decode import iter_frames, iter_frames_looped
from lipdub.media.probe import VideoInfo, probe_video
from lipdub.progress import NullProgress, ProgressSink
from lipdub.qc.measures import blend_measures

_LIPS = OUTER_UPPER + OUTER_LOWER
# The blend is measured on every other frame: a shot's seam and colour are medians, which
# half the frames give as well (and it was half the QC pass's time).
BLEND_EVERY = 2


@dataclass
class FaceSeries:
    """One dubbed face, per output frame (NaN where not measured)."""

    open_dub: np.ndarray  # inner-lip opening over eye distance
    open_src: np.ndarray
    mouth_dub: np.ndarray  # (frames, 2): the lips' centre in the face's frame, eye distances
    mouth_src: np.ndarray
    seam_dub: np.ndarray
    seam_src: np.ndarray
    colour_dub: np.ndarray
    colour_src: np.ndarray
    dubbed: np.ndarray  # bool: the face was on screen and re-synced here

    @classmethod
    def empty(cls, frames: int) -> FaceSeries:
        def nan(*shape: int) -> np.ndarray:
            return np.full((frames, *shape), np.nan, np.float32)
        return cls(nan(), nan(), nan(2), nan(2), nan(), nan(), nan(), nan(),
                   np.zeros(frames, bool))


def save_series(series: list[FaceSeries], path: Path) -> None:
    np.savez_compressed(path, **{f"{i}.{name}": getattr(one, name)
                                 for i, one in enumerate(series)
                                 for name in FaceSeries.__dataclass_fields__})


def load_series(path: Path) -> list[FaceSeries]:
    with np.load(path) as data:
        faces = sorted({int(key.split(".")[0]) for key in data.files})
        return [FaceSeries(**{name: data[f"{i}.{name}"]
                              for name in FaceSeries.__dataclass_fields__}) for i in faces]


def joined(parts: list[list[FaceSeries]]) -> list[FaceSeries]:
    """The series of consecutive parts as one."""
    return [FaceSeries(**{name: np.concatenate([getattr(part[face], name) for part in parts])
                          for name in FaceSeries.__dataclass_fields__})
            for face in range(len(parts[0]))] if parts else []


def _mouth_in_face(shape: FaceShape) -> np.ndarray:
    offset = shape.points[_LIPS].mean(axis=0) - shape.points[NOSE_TIP]
    eye = max(shape.eye_distance, 1e-6)
    return np.array([offset @ shape.eye_axis, offset @ shape.down_axis], np.float32) / eye


class _Lips:
    """One face's Face Mesh on one of the two videos, restarted where the picture jumps."""

    def __init__(self) -> None:
        self.tracker = LandmarkTracker()

    def measure(self, rgb: np.ndarray, box: tuple[int, int, int, int],
                restart: bool) -> FaceShape | None:
        if restart:
            self.tracker.reset()
        return self.tracker.measure(rgb, box)


def measured_frames(dub: Path, source_indices: np.ndarray) -> int:
    """How many output frames QC measures: the dub's, at most the plan's."""
    return min(len(source_indices), probe_video(dub).frame_count)


def measure_dub(source: VideoInfo, dub: Path, source_indices: np.ndarray,
                tracks: list[FaceTrack], dubbed: list[np.ndarray | None] | None = None,
                progress: ProgressSink | None = None,
                span: range | None = None) -> list[FaceSeries]:
    """Each face's series over the dub's frames (or the output frames `span`: a part of a
    film, measured on any worker; the parts' series, joined, are the whole film's).
    `source_indices`: the source frame of each output frame (the sync plan's); `dubbed`:
    per face, the output frames it was re-synced on (None: wherever it is on screen)."""
    progress = progress or NullProgress()
    span = span or range(measured_frames(dub, source_indices))
    series = [FaceSeries.empty(len(span)) for _ in tracks]
    lips = [(_Lips(), _Lips()) for _ in tracks]
    progress.start("qc", len(span))
    previous = -2
    starts = [track.shot_starts for track in tracks]  # computed per call: once here
    sources: Iterator[np.ndarray] = iter_frames_looped(
        source, iter(source_indices[span.start:span.stop]))
    try:
        with closing(iter_frames(probe_video(dub), start=span.start)) as dubs, \
                ThreadPoolExecutor(1, thread_name_prefix="lipdub-qc") as side:
            for j, (original, result) in enumerate(zip(sources, dubs, strict=False)):
                if j >= len(span):
                    break
                k = span.start + j
                s = int(source_indices[k])
                for face, track in enumerate(tracks):
                    wanted = dubbed[face] if dubbed is not None else None
                    if s >= track.frame_count or np.isnan(track.boxes[s, 0]) or (
                            wanted is not None and not wanted[k]):
                        continue
                    box = crop_box(track.boxes[s], original.shape[:2])
                    if box is None:
                        continue
                    restart = bool(starts[face][s]) or s - previous != 1
                    _measure_face(series[face], j, original, result, box, lips[face], restart,
                                  side)
                previous = s
                progress.advance("qc")
    finally:
        for pair in lips:
            for one in pair:
                one.tracker.close()
        progress.finish("qc")
    return series


def _measure_face(series: FaceSeries, k: int, original: np.ndarray, result: np.ndarray,
                  box: tuple[int, int, int, int], lips: tuple[_Lips, _Lips],
                  restart: bool, side: ThreadPoolExecutor) -> None:
    series.dubbed[k] = True
    # The source's face on a second thread (Face Mesh lets go of Python's lock) while
    # this one measures the dub's.
    source_shape = side.submit(lips[1].measure, original, box, restart)
    for shape, opening, mouth in ((lips[0].measure(result, box, restart), series.open_dub,
                                   series.mouth_dub),
                                  (source_shape.result(), series.open_src, series.mouth_src)):
        if shape is not None:
            opening[k] = shape.lip_gap() / max(shape.eye_distance, 1e-6)
            mouth[k] = _mouth_in_face(shape)
    if k % BLEND_EVERY:
        return
    x0, y0, x1, y1 = box
    blend = blend_measures(result[y0:y1, x0:x1], original[y0:y1, x0:x1])
    if blend is not None:
        series.seam_dub[k], series.colour_dub[k] = blend[0].seam, blend[0].colour
        series.seam_src[k], series.colour_src[k] = blend[1].seam, blend[1].colour
