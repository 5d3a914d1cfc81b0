"""QC on dubs with known answers: a synced dub, the same dub shifted against its sound, a
hard seam against a feathered one, and the CLI's report."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from lipdub.audio.load import FEATURE_RATE, load_mono_16k
from lipdub.engines.registry import analysis_engine, build_engine
from lipdub.media.decode import iter_frames
from lipdub.media.encode import DubWriter
from lipdub.media.probe import probe_video
from lipdub.pipeline import Analysis, DubReport, analyse_video, dub
from lipdub.qc.measures import closed_level, pause_closure, sync_estimate
from lipdub.qc.report import QCReport
from lipdub.qc.run import DubbedFace, check_dub
from lipdub.qc.thresholds import Flag, QCThresholds
from lipdub.sync import SyncMode, SyncPlan, plan_sync
from tests.test_cli_dub import run_cli

FRAME_SAMPLES = FEATURE_RATE // 25  # one frame of 16 kHz sound at 25 fps


@dataclass
class SyncedDub:
    video: Path
    output: Path
    line: np.ndarray  # the new voice, 16 kHz
    analysis: Analysis
    report: DubReport


@pytest.fixture(scope="module")
def synced(talking_clip: Path, new_voice: Path, tmp_path_factory: pytest.TempPathFactory
           ) -> SyncedDub:
    output = tmp_path_factory.mktemp("qc") / "synced.mp4"
    report = dub(talking_clip, new_voice, output, build_engine("warp", None),
                 qc=QCThresholds())
    engine = analysis_engine("warp")
    return SyncedDub(talking_clip, output, load_mono_16k(new_voice),
                     analyse_video(talking_clip, engine), report)


def _check(synced: SyncedDub, line: np.ndarray, output: Path | None = None) -> QCReport:
    info = probe_video(synced.video)
    plan = plan_sync(info.frame_count, len(synced.line) / FEATURE_RATE, float(info.fps),
                     SyncMode.CUT_OFF)
    return check_dub(info, output or synced.output, plan,
                     [DubbedFace(synced.analysis.track, line)], QCThresholds(),
                     load_mono_16k(synced.video))


def test_a_synced_dub_is_not_flagged(synced: SyncedDub) -> None:
    qc = synced.report.qc
    assert qc is not None and qc.frames == synced.report.output_frames
    assert qc.coverage["shots_dubbed"] == 1 and qc.coverage["face_frames"] == qc.frames
    (shot,) = qc.shots
    # Measured: offset -0.05 to -0.06 frames, correlation 0.905-0.92.
    assert Flag.SYNC_OFFSET not in shot.flags and Flag.WEAK_SYNC not in shot.flags, shot
    assert abs(shot.sync["offset_frames"]) < 0.5
    assert shot.sync["correlation"] > 0.6
    # The source's own mouth against its own sound (the clip was made from it): in sync.
    assert abs(shot.reference_sync["offset_frames"]) < 0.5
    assert shot.closure["pauses"] >= 1 and shot.closure["share"] >= 0.5
    assert Flag.SEAM not in shot.flags and Flag.COLOUR not in shot.flags


@pytest.mark.parametrize("frames", [3, -3])
def test_a_dub_shifted_against_its_sound_is_flagged_with_the_offset(
        synced: SyncedDub, frames: int) -> None:
    # The sound 3 frames early (its start cut): the picture is 3 frames late, and back.
    shift = frames * FRAME_SAMPLES
    line = synced.line[shift:] if frames > 0 else np.r_[np.zeros(-shift, np.float32),
                                                          synced.line]
    (shot,) = _check(synced, line).shots
    assert abs(shot.sync["offset_frames"] - frames) <= 1, shot.sync  # measured 2.95, -3.06
    assert Flag.SYNC_OFFSET in shot.flags
    # The same dub measured against its own line is in sync (the pass, not the fixture).
    (same,) = _check(synced, synced.line).shots
    assert abs(same.sync["offset_frames"]) < 0.5


def _pasted(synced: SyncedDub, folder: Path, name: str, feather: float,
            tint: tuple[int, int, int]) -> Path:
    """The source with its lower face brightened or tinted and pasted back, with a hard
    edge (feather 0) or a feathered one: a composite whose seam is known."""
    info = probe_video(synced.video)
    output = folder / f"{name}.mp4"
    with DubWriter(output, info.width, info.height, info.fps, None,
                   info.frame_count) as writer:
        for i, rgb in enumerate(iter_frames(info)):
            x0, y0, x1, y1 = synced.analysis.track.boxes[i].astype(int)
            mask = np.zeros(rgb.shape[:2], np.float32)
            cv2.ellipse(mask, ((x0 + x1) // 2, y0 + 3 * (y1 - y0) // 4),
                        ((x1 - x0) // 3, (y1 - y0) // 5), 0, 0, 360, 1.0, -1)
            if feather:
                mask = cv2.GaussianBlur(mask, (0, 0), feather)
            changed = np.clip(rgb.astype(np.float32) + np.array(tint, np.float32), 0, 255)
            writer.write((rgb + mask[..., None] * (changed - rgb)).round().astype(np.uint8))
    return output


def _blend_qc(synced: SyncedDub, path: Path) -> dict:
    info = probe_video(synced.video)
    plan = SyncPlan(SyncMode.SILENCE, np.arange(info.frame_count))
    (shot,) = check_dub(info, path, plan, [DubbedFace(synced.analysis.track,
                                                      load_mono_16k(synced.video))],
                        QCThresholds()).shots
    return {"seam": shot.seam, "colour": shot.colour, "flags": shot.flags}


def test_a_hard_seam_scores_worse_than_a_feathered_one(synced: SyncedDub,
                                                       tmp_path: Path) -> None:
    # Measured: the hard edge adds 1.89 grey levels a pixel to the source's gradient there,
    # the feathered one 0.01; the tint adds 7.5 to the chroma contrast, the others under 0.
    hard = _blend_qc(synced, _pasted(synced, tmp_path, "hard", 0, (28, 28, 28)))
    soft = _blend_qc(synced, _pasted(synced, tmp_path, "soft", 6, (28, 28, 28)))
    assert hard["seam"]["added"] > soft["seam"]["added"] + 1.0, (hard, soft)
    assert Flag.SEAM in hard["flags"] and Flag.SEAM not in soft["flags"], (hard, soft)
    # A tinted region: the colour measure sees it, whatever the edge.
    tinted = _blend_qc(synced, _pasted(synced, tmp_path, "tint", 6, (20, -4, -20)))
    assert tinted["colour"]["added"] > soft["colour"]["added"] + 2, (tinted, soft)
    assert Flag.COLOUR in tinted["flags"]


def test_the_measures_on_series_with_known_answers() -> None:
    rng = np.random.default_rng(3)
    level = np.repeat(rng.uniform(-40, 0, 40), 4)  # 160 frames of syllables and pauses
    opening = np.maximum(level, -30) + 30.0
    for lag in (-2, 0, 2, 5):
        shifted = np.roll(opening, lag).astype(np.float32)
        shifted[:abs(lag)] = np.nan  # rolled-in frames unknown
        estimate = sync_estimate(shifted, level)
        assert estimate is not None and abs(estimate.offset_frames - lag) < 0.5
    assert sync_estimate(np.full(160, np.nan, np.float32), level) is None  # nothing known
    silent = np.array([0] * 10 + [-60] * 6 + [0] * 10 + [-60] * 2 + [0] * 10, float)
    mouth = np.where(silent < -30, 0.02, 0.2).astype(np.float32)
    closure = pause_closure(mouth, silent, 25.0, 0.06)
    assert (closure.pauses, closure.closed) == (1, 1)  # the 2-frame gap is not a pause
    open_mouth = np.full_like(mouth, 0.2)
    assert pause_closure(open_mouth, silent, 25.0, 0.06).share == 0.0
    # A face whose mouth rests a little open is judged against its own rest.
    resting = np.r_[np.full(20, 0.05), np.full(80, 0.2)].astype(np.float32)
    assert closed_level(resting, 0.06) == pytest.approx(0.07)
    assert closed_level(np.full(10, 0.01, np.float32), 0.06) == 0.06


def test_the_cli_prints_the_qc_and_writes_it_with_qc(talking_clip: Path, new_voice: Path,
                                                     tmp_path: Path) -> None:
    output = tmp_path / "out.mp4"
    code, text = run_cli("dub", "--video", str(talking_clip), "--audio", str(new_voice),
                         "--output", str(output), "--engine", "warp", "--qc")
    assert code == 0, text
    assert "QC: no shot flagged (1 measured)" in text and "qc" in text  # the stage, timed
    report = json.loads((tmp_path / "out.qc.json").read_text())
    assert report["summary"]["shots"] == 1 and report["shots"][0]["flags"] == []
    assert report["thresholds"]["sync_offset_frames"] == 1.0
    assert not list(tmp_path.glob(".*partial"))
    code, text = run_cli("dub", "--video", str(talking_clip), "--audio", str(new_voice),
                         "--output", str(tmp_path / "quick.mp4"), "--engine", "warp",
                         "--no-qc")
    assert code == 0 and "QC" not in text, text
    assert not (tmp_path / "quick.qc.json").exists()


def test_thresholds_are_configuration(talking_clip: Path, new_voice: Path, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from lipdub.config import get_settings

    monkeypatch.setenv("LIPDUB_QC_THRESHOLDS", json.dumps({"sync_min_correlation": 0.99,
                                                          "jitter_max_ratio": 0.01}))
    get_settings.cache_clear()
    try:
        output = tmp_path / "strict.mp4"
        code, text = run_cli("dub", "--video", str(talking_clip), "--audio", str(new_voice),
                             "--output", str(output), "--engine", "warp", "--qc")
        assert code == 0, text
        report = json.loads(output.with_suffix(".qc.json").read_text())
        assert report["thresholds"]["sync_min_correlation"] == 0.99
        assert {Flag.WEAK_SYNC, Flag.JITTER} <= set(report["shots"][0]["flags"])
        assert "QC: 1 of 1 shots flagged" in text and "weak_sync" in text
    finally:
        get_settings.cache_clear()


def test_blend_widens_or_narrows_what_the_dub_changes(
        talking_clip: Path, short_voice: Path, tmp_path: Path,
        random_wav2lip_checkpoint: Path) -> None:
    """Wav2Lip's pixels are its own (random weights here: far from the face's), so where
    its matte reaches shows in every frame. (The warp engine moves the face's own pixels
    and fades its warp out by itself: its matte's edge changes little.)"""
    from lipdub.blend import BlendMode

    source = np.stack(list(iter_frames(probe_video(talking_clip)))).astype(np.int16)
    changed = {}
    for mode in BlendMode:
        output = tmp_path / f"{mode.value}.mp4"
        dub(talking_clip, short_voice, output,
            build_engine("wav2lip", random_wav2lip_checkpoint), blend=mode)
        frames = np.stack(list(iter_frames(probe_video(output)))).astype(np.int16)
        difference = np.abs(frames - source[:len(frames)]).max(axis=3)
        changed[mode] = float((difference > 12).mean())
    # Measured: 4.9%, 3.7% and 2.8% of the pixels changed by more than 12 levels.
    assert changed[BlendMode.SOFT] > 1.15 * changed[BlendMode.STANDARD] \
        > 1.15 ** 2 * changed[BlendMode.TIGHT], changed
