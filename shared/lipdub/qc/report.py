"""Per-shot QC figures, their flags and the job's summary, from the QC pass's series and
the sound."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lipdub.qc.measures import closed_level, jitter, pause_closure, sync_estimate
from lipdub.qc.thresholds import Flag, QCThresholds

if TYPE_CHECKING:
    from lipdub.qc.frames import FaceSeries


@dataclass
class ShotQC:
    shot: int
    face: str  # the character (a cast), or "" for a dub's one face
    start_frame: int  # output frames, [start, stop)
    stop_frame: int
    dubbed_frames: int
    sync: dict
    reference_sync: dict
    closure: dict
    seam: dict
    colour: dict
    jitter: dict
    flags: list[str] = field(default_factory=list)


def _rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), digits)


def _median(values: np.ndarray) -> float | None:
    known = values[~np.isnan(values)]
    return float(np.median(known)) if len(known) else None


def _sync(openness: np.ndarray, level_db: np.ndarray) -> dict:
    estimate = sync_estimate(openness, level_db)
    if estimate is None:
        return {"offset_frames": None, "correlation": None, "frames": 0}
    return {"offset_frames": _rounded(estimate.offset_frames, 2),
            "correlation": _rounded(estimate.correlation),
            "correlation_at_zero": _rounded(estimate.correlation_at_zero),
            "frames": estimate.frames}


def shot_qc(series: FaceSeries, frames: slice, shot: int, face: str, new_level: np.ndarray,
            original_level: np.ndarray | None, fps: float, t: QCThresholds) -> ShotQC:
    """One face in one shot (output frames `frames`)."""
    dubbed = series.dubbed[frames]
    open_dub = np.where(dubbed, series.open_dub[frames], np.nan)
    sync = _sync(open_dub, new_level[frames])
    reference = _sync(series.open_src[frames], original_level[frames]) \
        if original_level is not None else {"offset_frames": None, "correlation": None,
                                            "frames": 0}
    closure = pause_closure(open_dub, new_level[frames], fps,
                            closed_level(series.open_src[frames], t.mouth_closed_below))
    seam = (_median(series.seam_dub[frames]), _median(series.seam_src[frames]))
    colour = (_median(series.colour_dub[frames]), _median(series.colour_src[frames]))
    shake = (jitter(series.mouth_dub[frames]), jitter(series.mouth_src[frames]))
    qc = ShotQC(
        shot=shot, face=face, start_frame=frames.start, stop_frame=frames.stop,
        dubbed_frames=int(dubbed.sum()), sync=sync, reference_sync=reference,
        closure={"pauses": closure.pauses, "closed": closure.closed,
                 "share": _rounded(closure.share)},
        seam={"dub": _rounded(seam[0]), "source": _rounded(seam[1]),
              "added": _rounded(None if None in seam else seam[0] - seam[1])},
        colour={"dub": _rounded(colour[0]), "source": _rounded(colour[1]),
                "added": _rounded(None if None in colour else colour[0] - colour[1])},
        jitter={"dub": _rounded(shake[0], 4), "source": _rounded(shake[1], 4),
                "ratio": _rounded(_ratio(*shake))})
    qc.flags = _flags(qc, t)
    return qc


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a / max(b, 1e-3)


def _flags(qc: ShotQC, t: QCThresholds) -> list[str]:
    flags = []
    offset, correlation = qc.sync["offset_frames"], qc.sync["correlation"]
    if offset is not None and abs(offset) >= t.sync_offset_frames:
        flags.append(Flag.SYNC_OFFSET.value)
    if correlation is not None and correlation < t.sync_min_correlation:
        flags.append(Flag.WEAK_SYNC.value)
    if qc.closure["share"] is not None and qc.closure["share"] < t.closure_min_share:
        flags.append(Flag.OPEN_IN_PAUSES.value)
    if qc.seam["added"] is not None and qc.seam["added"] > t.seam_max_added:
        flags.append(Flag.SEAM.value)
    if qc.colour["added"] is not None and qc.colour["added"] > t.colour_max_delta:
        flags.append(Flag.COLOUR.value)
    if qc.jitter["ratio"] is not None and qc.jitter["ratio"] > t.jitter_max_ratio:
        flags.append(Flag.JITTER.value)
    return flags


@dataclass
class QCReport:
    fps: float
    frames: int  # output frames
    coverage: dict
    shots: list[ShotQC]
    thresholds: QCThresholds

    def worst(self, count: int = 5) -> list[ShotQC]:
        """Where a reviewer looks first: most flags, then the weakest sync."""
        def badness(shot: ShotQC) -> tuple[int, float]:
            correlation = shot.sync["correlation"]
            return (-len(shot.flags), correlation if correlation is not None else 1.0)
        return sorted(self.shots, key=badness)[:count]

    def summary(self) -> dict:
        flagged = [s for s in self.shots if s.flags]
        counts: dict[str, int] = {}
        for shot in flagged:
            for flag in shot.flags:
                counts[flag] = counts.get(flag, 0) + 1
        return {"shots": len(self.shots), "flagged_shots": len(flagged), "flags": counts,
                "worst": [{"shot": s.shot, "face": s.face, "flags": s.flags}
                          for s in self.worst(3) if s.flags]}

    def to_dict(self) -> dict:
        return {"fps": self.fps, "frames": self.frames, "coverage": self.coverage,
                "summary": self.summary(), "thresholds": asdict(self.thresholds),
                "shots": [asdict(s) for s in self.shots]}


def build_report(series: list[FaceSeries], names: list[str], shots: np.ndarray,
                 new_levels: list[np.ndarray], original_level: np.ndarray | None,
                 fps: float, thresholds: QCThresholds, passthrough_frames: int = 0
                 ) -> QCReport:
    """`shots`: each output frame's shot number; `new_levels`: per face, its line's
    loudness per output frame (dB); `original_level`: the source's own sound per output
    frame, for the reference sync (None: the source has none)."""
    frames = len(shots)
    edges = np.flatnonzero(np.diff(shots)) + 1
    spans = list(zip(np.r_[0, edges], np.r_[edges, frames], strict=True)) if frames else []
    results = []
    for one, name, level in zip(series, names, new_levels, strict=True):
        for start, stop in spans:
            if one.dubbed[start:stop].any():
                results.append(shot_qc(one, slice(int(start), int(stop)), int(shots[start]),
                                       name, level, original_level, fps, thresholds))
    on_screen = np.zeros(frames, bool)
    for one in series:
        on_screen |= one.dubbed
    coverage = {"frames": frames, "face_frames": int(on_screen.sum()),
                "no_face_frames": int(frames - on_screen.sum()),
                "passthrough_frames": passthrough_frames, "shots": len(spans),
                "shots_dubbed": len({s.shot for s in results})}
    results.sort(key=lambda s: (s.start_frame, s.face))
    return QCReport(fps, frames, coverage, results, thresholds)


def qc_path_for(output: Path) -> Path:
    """Where a CLI dub's QC report goes: beside it, out.mp4 -> out.qc.json."""
    return output.with_suffix(".qc.json")


def write_report(report: QCReport, path: Path) -> None:
    """Whole or not at all: a reader never sees half a report."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(report.to_dict(), indent=1))
    os.replace(partial, path)
