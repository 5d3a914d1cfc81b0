"""The analysis passes between a job's stages (and workers of two releases) as a versioned
file: what goes in comes out, engine study state included; a newer format or a foreign file
is refused with a clear error."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lipdub.analysis_io import VERSION, AnalysisFormatError, load_analysis, save_analysis
from lipdub.engines.warp.engine import WarpEngine
from lipdub.engines.warp.interior import TeethReference
from lipdub.faces.track import FaceTrack
from lipdub.pipeline import Analysis


def _track() -> FaceTrack:
    boxes = np.array([[10, 20, 110, 140], [np.nan] * 4, [12, 21, 111, 141]], np.float32)
    return FaceTrack(boxes=boxes, shot=np.array([0, 0, 1], np.int32), frame_size=(360, 640))


def test_an_analysis_round_trips_with_the_engines_study_state(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    engine = WarpEngine()
    engine.reference = TeethReference(pixels=rng.integers(0, 255, (9, 14, 3), np.uint8),
                                      mask=rng.random((9, 14)).astype(np.float32),
                                      openness=0.31)
    path = tmp_path / "analysis.npz"
    save_analysis(Analysis(_track(), engine.study_state()), path)
    loaded = load_analysis(path)
    np.testing.assert_array_equal(loaded.track.boxes, _track().boxes)
    np.testing.assert_array_equal(loaded.track.shot, _track().shot)
    assert loaded.track.frame_size == (360, 640)
    other = WarpEngine()
    other.load_study_state(loaded.study)
    assert other.reference is not None and other.reference.openness == pytest.approx(0.31)
    np.testing.assert_array_equal(other.reference.pixels, engine.reference.pixels)
    np.testing.assert_array_equal(other.reference.mask, engine.reference.mask)
    engine.close()
    other.close()
    save_analysis(Analysis(_track(), None), path)  # an engine that studies nothing
    assert load_analysis(path).study is None


def test_newer_or_foreign_files_are_refused_clearly(tmp_path: Path) -> None:
    newer = tmp_path / "newer.npz"
    header = {"format": "lipdub.analysis", "version": VERSION + 1, "frame_size": [1, 1],
              "study": None}
    np.savez(newer, header=np.array(json.dumps(header)), boxes=np.zeros((1, 4), np.float32),
             shot=np.zeros(1, np.int32))
    with pytest.raises(AnalysisFormatError, match="newer release"):
        load_analysis(newer)
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, x=np.zeros(3))
    with pytest.raises(AnalysisFormatError, match="unreadable"):
        load_analysis(foreign)
    pickled = tmp_path / "old.pkl"
    pickled.write_bytes(b"\x80\x05K\x01.")
    with pytest.raises(AnalysisFormatError):
        load_analysis(pickled)
