"""QC of a finished dub: the QC pass over the output and its source, then the report."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lipdub.audio.samples import Samples
from lipdub.faces.speaking import loudness
from lipdub.faces.track import FaceTrack
from lipdub.media.probe import VideoInfo
from lipdub.progress import ProgressSink
from lipdub.qc.frames import FaceSeries, measure_dub
from lipdub.qc.report import QCReport, build_report
from lipdub.qc.thresholds import QCThresholds
from lipdub.sync import SyncPlan


@dataclass
class DubbedFace:
    """A face the dub re-synced: its track (per source frame), the line it speaks (16 kHz,
    on the output's clock) and how much of the new mouth each output frame took."""

    track: FaceTrack
    line: Samples
    weights: np.ndarray | None = None  # None: the whole output
    name: str = ""  # the character, for a cast


def check_dub(source: VideoInfo, dub: Path, plan: SyncPlan, faces: list[DubbedFace],
              thresholds: QCThresholds, original: Samples | None = None,
              progress: ProgressSink | None = None, passthrough_frames: int = 0) -> QCReport:
    """`original`: the source's own sound (16 kHz), for the reference sync of each shot."""
    series = measure_faces(source, dub, plan, faces, progress)
    return report_of(series, source, plan, faces, thresholds, original, passthrough_frames)


def measure_faces(source: VideoInfo, dub: Path, plan: SyncPlan, faces: list[DubbedFace],
                  progress: ProgressSink | None = None,
                  span: range | None = None) -> list[FaceSeries]:
    """The QC pass over the output (or its frames `span`, a part of a film)."""
    dubbed = [None if f.weights is None else f.weights > 0 for f in faces]
    return measure_dub(source, dub, plan.source_indices, [f.track for f in faces], dubbed,
                       progress, span)


def report_of(series: list[FaceSeries], source: VideoInfo, plan: SyncPlan,
              faces: list[DubbedFace], thresholds: QCThresholds,
              original: Samples | None = None, passthrough_frames: int = 0) -> QCReport:
    """The report from the whole output's series (one pass's, or its parts' joined)."""
    frames = len(series[0].dubbed) if series else 0
    indices = plan.source_indices[:frames]
    fps = float(source.fps)
    original_level = loudness(original, fps, source.frame_count)[indices] \
        if original is not None and len(original) else None
    shots = faces[0].track.shot[np.minimum(indices, len(faces[0].track.shot) - 1)] \
        if faces else np.zeros(0, int)
    return build_report(series, [f.name for f in faces], shots,
                        [loudness(f.line, fps, frames) for f in faces], original_level, fps,
                        thresholds, passthrough_frames)
