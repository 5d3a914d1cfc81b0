"""The weight-free warp engine: follows the new audio, closes in silence, never folds,
leaves everything above the nose alone, copes with turned and small faces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lipdub.cli import app
from lipdub.composite import composite
from lipdub.engines.warp.articulation import articulation_track
from lipdub.engines.warp.engine import reanimate
from lipdub.engines.warp.geometry import mouth_target
from lipdub.engines.warp.landmarks import LandmarkTracker
from lipdub.engines.warp.piecewise import fold_free_warp, folded_triangles
from lipdub.samples.talking import ClipSpec, base_frame
from tests.media_helpers import (
    best_lag_correlation,
    loudness_envelope,
    mouth_openness,
    read_frames,
)

runner = CliRunner()


def _dub(video: Path, audio: Path, out: Path) -> str:
    result = runner.invoke(app, ["dub", "--video", str(video), "--audio", str(audio),
                                 "--output", str(out), "--engine", "warp"])
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


@pytest.fixture(scope="module")
def dubbed(talking_clip: Path, new_voice: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("warp") / "dubbed.mp4"
    _dub(talking_clip, new_voice, out)
    return out, mouth_openness(out)


def test_mouth_follows_the_new_audio_not_the_original(dubbed, talking_clip: Path,
                                                      new_voice: Path) -> None:
    out, openness = dubbed
    frames = len(openness)
    assert np.isnan(openness).mean() < 0.05  # Face Mesh finds the dubbed face
    new_env = loudness_envelope(new_voice, 25.0, frames)
    original_env = loudness_envelope(talking_clip, 25.0, frames)
    r_new = best_lag_correlation(openness, new_env)
    r_original = best_lag_correlation(openness, original_env)
    print(f"r(new audio) = {r_new:.3f}, r(original audio) = {r_original:.3f}")
    assert r_new >= 0.5
    assert r_new > r_original + 0.2


def test_mouth_is_closed_during_silences(dubbed, new_voice: Path) -> None:
    _, openness = dubbed
    env = loudness_envelope(new_voice, 25.0, len(openness))
    silent = env < -50
    cores: list[np.ndarray] = []
    k = 0
    while k < len(silent):
        if not silent[k]:
            k += 1
            continue
        end = k
        while end < len(silent) and silent[end]:
            end += 1
        if end - k >= 8:  # a silence longer than 0.3 s
            cores.append(openness[k + 3 : end - 1])  # after the lips' release, before onset
        k = end
    core = np.concatenate(cores)
    assert len(core) >= 8  # the new track does have such pauses
    # Face Mesh reads this face's shut mouth as about 0.03 eye distances. Known limit: where
    # the source mouth is wide open, a fold-avoiding warp can leave a sliver open on a few
    # frames, so the bound is on nearly all frames, with a hard ceiling on the rest.
    print(f"silence frames: {len(core)}, closed (<0.05): {np.mean(core < 0.05):.2f}, "
          f"max {np.nanmax(core):.3f}")
    assert np.mean(core < 0.05) >= 0.85, np.round(core, 3)
    assert np.nanmax(core) < 0.1, np.round(core, 3)


def test_speech_opens_the_mouth(dubbed, new_voice: Path) -> None:
    _, openness = dubbed
    env = loudness_envelope(new_voice, 25.0, len(openness))
    loud = env > np.percentile(env, 80)
    assert np.nanmedian(openness[loud]) > 0.12


def test_no_fold_and_nothing_above_the_nose_moves() -> None:
    frame = base_frame(ClipSpec(width=640, height=360, face_height=150, head_motion=False))
    tracker = LandmarkTracker(smoothing=0.0, static=True)
    shape = tracker.measure(frame, (0, 0, 640, 360))
    tracker.close()
    assert shape is not None
    nose_tip_y = int(np.floor(shape.points[1][1]))
    rng = np.random.default_rng(0)
    for openness, width in [(0, 0), (1, 1), (1, -1), (0, 1)] + [
        (float(a), float(b)) for a, b in zip(rng.random(20), rng.uniform(-1, 1, 20),
                                             strict=True)
    ]:
        target = mouth_target(shape, openness, width)
        warp = fold_free_warp(target.src, target.dst)
        assert warp is not None
        held_back = np.abs(warp.dst - target.dst).max()
        assert held_back < 0.25 * shape.eye_distance  # speech shapes stay (nearly) as asked
        assert not folded_triangles(warp.src, warp.dst, warp.triangles).any()
        patch = reanimate(frame, shape, openness, width, None)
        assert patch is not None
        out = composite(frame, patch)
        assert np.array_equal(out[:nose_tip_y], frame[:nose_tip_y])


def test_an_impossible_warp_is_shrunk_until_it_does_not_fold() -> None:
    src = np.array([[0, 0], [10, 0], [0, 10], [10, 10], [5, 5]], dtype=np.float64)
    dst = src.copy()
    dst[4] = [25, 25]  # the centre point dragged far outside: folds the mesh
    warp = fold_free_warp(src, dst)
    assert warp is not None
    assert np.linalg.norm(warp.dst[4] - src[4]) < np.linalg.norm(dst[4] - src[4])
    assert not folded_triangles(warp.src, warp.dst, warp.triangles).any()


def test_articulation_closes_in_silence_and_opens_before_the_sound() -> None:
    rate = 16_000
    t = np.arange(3 * rate) / rate
    burst = (t >= 1.0) & (t < 2.0)
    audio = np.where(burst, 0.3 * np.sin(2 * np.pi * 200 * t) * (1 + np.sin(2 * np.pi * 4 * t)),
                     0.0) + 1e-4 * np.random.default_rng(0).standard_normal(len(t))
    track = articulation_track(audio.astype(np.float32), 25.0, 75)
    assert track.openness[:23].max() < 0.02  # silence before
    assert track.openness[24] > 0.0  # the frame just before the sound starts to open
    assert track.openness[56:].max() < 0.05  # closed 0.2 s after the sound stops
    assert track.openness[25:50].max() > 0.5
    assert np.all((track.width >= -1) & (track.width <= 1))
    silent = articulation_track(np.zeros(rate, dtype=np.float32), 25.0, 25)
    assert silent.openness.max() == 0.0


@pytest.mark.parametrize("spec", [
    ClipSpec(width=1280, height=720, face_height=260, yaw_degrees=30, head_motion=True),
    ClipSpec(width=1280, height=720, face_height=80, face_centre=(0.3, 0.4)),
], ids=["yaw30", "small80px"])
def test_turned_and_small_faces_are_dubbed(samples, spec: ClipSpec, new_voice: Path,
                                           tmp_path: Path) -> None:
    clip = samples.clip(f"face-{spec.face_height}-{spec.yaw_degrees}", 2.0, seed=5, spec=spec)
    out = tmp_path / "out.mp4"
    text = _dub(clip, new_voice, out)
    assert "faces found in 50" in text
    before, after = np.stack(read_frames(clip)), np.stack(read_frames(out))
    changed = np.abs(before.astype(int) - after.astype(int)).max(axis=3) > 30
    assert changed.any(axis=(1, 2)).mean() > 0.5  # most frames got a new mouth
    cx, cy = spec.face_centre[0] * spec.width, spec.face_centre[1] * spec.height
    r = spec.face_height
    openness = mouth_openness(out, (int(cx - r), int(cy - r), int(cx + r), int(cy + r)))
    assert np.isnan(openness).mean() < 0.1
    r = best_lag_correlation(openness, loudness_envelope(new_voice, 25.0, len(openness)))
    print(f"{spec}: r(new audio) = {r:.3f}")
    assert r >= 0.4


def test_steady_sound_gives_a_steady_mouth_without_jitter(samples, tmp_path: Path) -> None:
    from lipdub.samples.speech import write_wav

    still = ClipSpec(width=640, height=360, face_height=150, face_centre=(0.5, 0.42),
                     head_motion=False)
    clip = samples.clip("still", 3.0, seed=3, spec=still)
    rate = 16_000
    t = np.arange(3 * rate) / rate
    tone = np.where((t > 0.5) & (t < 2.5), 0.3 * np.sin(2 * np.pi * 180 * t), 0.0)
    audio = tmp_path / "tone.wav"
    write_wav(str(audio), (tone + 1e-4 * np.random.default_rng(1).standard_normal(len(t)))
              .astype(np.float32))
    out = tmp_path / "out.mp4"
    _dub(clip, audio, out)
    openness = mouth_openness(out)
    source = mouth_openness(clip)[25:55]  # the source face keeps talking meanwhile
    held = openness[25:55]  # 1.0-2.2 s: the tone is steady, so the mouth should hold still
    step, source_step = np.nanmean(np.abs(np.diff(held))), np.nanmean(np.abs(np.diff(source)))
    print(f"steady tone: mean {np.nanmean(held):.3f}, frame-to-frame {step:.4f} "
          f"(source {source_step:.4f}), largest step {np.nanmax(np.abs(np.diff(held))):.3f}")
    assert np.nanmean(held) > 0.1  # it is open
    # Steadier than the talking source beneath it. Measured: 0.0117 against a source's
    # 0.0266 on one machine, 0.0140 on another (the face models' arithmetic differs between
    # CPUs); the bound sits clear of both, and far below the source.
    assert step < 0.65 * source_step
    assert np.nanmax(np.abs(np.diff(held))) < 0.05  # no popping
