"""End-to-end `lipdub dub` on generated clips: lengths, sync modes, untouched pixels,
pass-through, bad input, rotated and variable-frame-rate sources."""

from __future__ import annotations

import subprocess
import sys
import wave
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lipdub.cli import app
from lipdub.media.encode import DubWriter
from lipdub.samples.speech import SpeechSpec, speech_like
from lipdub.samples.talking import ClipSpec
from tests.conftest import SMALL, assert_no_partial_files
from tests.media_helpers import inspect_output, read_frames, write_video

runner = CliRunner()


def run_cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, result.output  # stdout and stderr, as a terminal shows them


def dub(video: Path, audio: Path, output: Path, *extra: str) -> str:
    code, text = run_cli("dub", "--video", str(video), "--audio", str(audio), "--output",
                         str(output), *extra)
    assert code == 0, text
    return text


@pytest.mark.parametrize(
    ("mode", "audio_fixture", "frames", "audio_seconds"),
    [
        ("cut_off", "new_voice", 100, 4.0),  # audio longer: cut to the video
        ("cut_off", "short_voice", 62, 2.48),  # video longer: cut to the audio
        ("loop", "new_voice", 125, 5.0),
        ("bounce", "new_voice", 125, 5.0),
        ("silence", "short_voice", 100, 4.0),  # whole video, audio padded with silence
    ],
)
def test_sync_modes_set_length_fps_and_audio(
    request: pytest.FixtureRequest, tmp_path: Path, talking_clip: Path, mode: str,
    audio_fixture: str, frames: int, audio_seconds: float,
) -> None:
    audio = request.getfixturevalue(audio_fixture)
    out = tmp_path / "out.mp4"
    text = dub(talking_clip, audio, out, "--engine", "warp", "--sync-mode", mode)
    got = inspect_output(out)
    assert abs(got.frames - frames) <= 1, got
    assert got.fps == 25.0
    assert (got.video_codec, got.audio_codec, got.pix_fmt) == ("h264", "aac", "yuv420p")
    assert abs(got.audio_seconds - audio_seconds) < 0.05, got
    assert abs(got.audio_seconds - got.video_seconds) < 0.05, got  # in sync, frame accurate
    assert f"output frames {got.frames}" in " ".join(text.split())
    assert_no_partial_files(tmp_path)


def test_loop_and_bounce_repeat_the_footage(tmp_path: Path, talking_clip: Path,
                                            new_voice: Path) -> None:
    src = read_frames(talking_clip)
    dub(talking_clip, new_voice, tmp_path / "loop.mp4", "--engine", "warp", "--sync-mode", "loop")
    dub(talking_clip, new_voice, tmp_path / "bounce.mp4", "--engine", "warp",
        "--sync-mode", "bounce")
    loop, bounce = read_frames(tmp_path / "loop.mp4"), read_frames(tmp_path / "bounce.mp4")

    def top(frame: np.ndarray) -> np.ndarray:  # above the face: unaffected by the lip-sync
        return frame[:60].astype(np.float32)

    def closest(frame: np.ndarray) -> int:
        return int(np.argmin([np.abs(top(frame) - top(s)).mean() for s in src]))

    # Neighbouring frames differ little above the face, so allow one frame of slack each.
    loop_err = [abs(closest(loop[k]) - (k - 100)) for k in range(100, 125, 3)]
    bounce_err = [abs(closest(bounce[k]) - (198 - k)) for k in range(100, 125, 3)]
    assert max(loop_err) <= 1 and np.mean(loop_err) <= 0.5, loop_err
    assert max(bounce_err) <= 1 and np.mean(bounce_err) <= 0.5, bounce_err  # 99, 98, 97, ...


def test_pixels_outside_the_face_are_unchanged(tmp_path: Path, samples, new_voice: Path) -> None:
    still = ClipSpec(width=640, height=360, face_height=150, face_centre=(0.5, 0.42),
                     head_motion=False)
    clip = samples.clip("still", 3.0, seed=3, spec=still)
    out = tmp_path / "out.mp4"
    dub(clip, new_voice, out, "--engine", "warp")
    baseline = reencoded(clip, tmp_path)
    after = np.stack(read_frames(out)).astype(np.int16)
    diff = np.abs(baseline - after).max(axis=3)
    # The face is centred at (320, 151) and 150 px tall: the lower face lies inside this box.
    face = np.zeros(diff.shape[1:], dtype=bool)
    face[130:260, 240:400] = True
    outside, inside = diff[:, ~face], diff[:, face]
    assert outside.mean() < 0.3
    assert np.percentile(outside, 99.9) <= 8
    assert inside.max(axis=1).mean() > 40  # and the mouth really changed


def reencoded(clip: Path, tmp_path: Path) -> np.ndarray:
    """Codec tolerance: the same frames through the same writer, with no lip-sync at all."""
    source = read_frames(clip)
    h, w = source[0].shape[:2]
    path = tmp_path / "reencoded.mp4"
    with DubWriter(path, w, h, Fraction(25), None, len(source)) as writer:
        for frame in source:
            writer.write(frame)
    return np.stack(read_frames(path)).astype(np.int16)


def test_clip_without_faces_passes_through_with_a_warning(tmp_path: Path, samples,
                                                          short_voice: Path) -> None:
    empty = ClipSpec(width=320, height=180, no_face=True, head_motion=False)
    clip = samples.clip("noface", 2.0, spec=empty)
    out = tmp_path / "out.mp4"
    text = dub(clip, short_voice, out)
    flat = " ".join(text.split())
    assert "No face was found in any frame" in flat
    assert "passed through without a face 50" in flat
    before, after = np.stack(read_frames(clip)), np.stack(read_frames(out))
    assert before.shape == after.shape
    assert np.abs(before.astype(int) - after.astype(int)).mean() < 1.0
    assert inspect_output(out).audio_seconds == pytest.approx(2.0, abs=0.05)


def test_bad_inputs_fail_with_one_clear_sentence_and_leave_nothing(
    tmp_path: Path, talking_clip: Path, new_voice: Path,
) -> None:
    notes = tmp_path / "notes.mp4"
    notes.write_text("not a video\n" * 100)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    zero = tmp_path / "zero.wav"
    with wave.open(str(zero), "wb") as header_only:  # a valid WAV holding no samples
        header_only.setnchannels(1)
        header_only.setsampwidth(2)
        header_only.setframerate(16_000)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(talking_clip.read_bytes()[:20_000])
    silent_video = write_video(tmp_path / "silent.mp4", [np.zeros((64, 64, 3), np.uint8)] * 5)
    bad_weights = tmp_path / "bad.pth"
    bad_weights.write_bytes(b"\x00" * 1000)
    out = tmp_path / "out.mp4"
    cases = [
        (["--video", str(tmp_path / "missing.mp4")], "does not exist"),
        (["--video", str(notes)], "could not be read as media"),
        (["--video", str(truncated)], "truncated"),
        (["--video", str(new_voice)], "has no video stream"),
        (["--audio", str(silent_video)], "has no audio stream"),
        (["--audio", str(empty)], "is empty"),
        (["--audio", str(zero)], "zero length"),
        (["--engine", "wav2lip", "--wav2lip-checkpoint", str(bad_weights)],
         "is not a PyTorch checkpoint"),
        (["--engine", "wav2lip"], "needs the Wav2Lip weights"),
        (["--engine", "wav2lip", "--wav2lip-checkpoint", str(bad_weights),
          "--cpu-runtime", "fastest"], "CPU runtime 'fastest' is not known"),
        (["--output", str(tmp_path / "no" / "such" / "dir" / "o.mp4")], "does not exist"),
        (["--output", str(tmp_path)], "is a directory"),
        (["--face", "nobody"], "--face 'nobody' is not understood"),
    ]
    for override, message in cases:
        args = {"--video": str(talking_clip), "--audio": str(new_voice), "--output": str(out)}
        extra: list[str] = []
        i = 0
        while i < len(override):
            if override[i] in args:
                args[override[i]] = override[i + 1]
            else:
                extra += override[i : i + 2]
            i += 2
        flat_args = [x for kv in args.items() for x in kv] + extra
        code, text = run_cli("dub", *flat_args)
        flat = " ".join(text.split())
        assert code == 2, (override, text)
        assert "error:" in flat and message in flat, (override, flat)
        assert "Traceback" not in text
        assert not out.exists(), override
        assert_no_partial_files(tmp_path)


def test_rotated_and_variable_frame_rate_sources_come_out_upright_and_in_sync(
    tmp_path: Path, talking_clip: Path, new_voice: Path,
) -> None:
    frames = read_frames(talking_clip)[:75]
    stored = [np.ascontiguousarray(np.rot90(f, k=1)) for f in frames]
    rotated = write_video(tmp_path / "phone.mp4", stored, display_rotation=-90)
    out = tmp_path / "rotated_out.mp4"
    text = dub(rotated, new_voice, out, "--engine", "warp")
    got = inspect_output(out)
    assert (got.width, got.height) == (640, 360)
    assert "faces found in 75" in " ".join(text.split())
    assert abs(got.audio_seconds - got.video_seconds) < 0.05

    rng = np.random.default_rng(0)
    pts = np.cumsum(rng.choice([20, 40, 40, 60], size=75)).tolist()
    pts = [0] + pts[:-1]
    vfr = write_video(tmp_path / "vfr.mp4", frames, pts_ms=pts)
    out = tmp_path / "vfr_out.mp4"
    dub(vfr, new_voice, out, "--engine", "warp")
    got = inspect_output(out)
    assert abs(got.audio_seconds - got.video_seconds) < 0.05
    assert abs(got.video_seconds - pts[-1] / 1000) < 0.15


def test_wav2lip_engine_dubs_with_a_random_checkpoint(
    tmp_path: Path, samples, random_wav2lip_checkpoint: Path, short_voice: Path,
) -> None:
    clip = samples.clip("w2l", 2.0, seed=4, spec=SMALL)
    out = tmp_path / "out.mp4"
    text = dub(clip, short_voice, out, "--engine", "auto", "--wav2lip-checkpoint",
               str(random_wav2lip_checkpoint))
    flat = " ".join(text.split())
    assert "engine wav2lip" in flat and "faces found in 50" in flat
    source = np.stack(read_frames(clip)).astype(np.int16)
    after = np.stack(read_frames(out)).astype(np.int16)
    baseline = reencoded(clip, tmp_path)
    # Forehead and above: no further from the source than a plain re-encode is.
    codec_error = np.abs(source[:, :100] - baseline[:, :100]).mean()
    dub_error = np.abs(source[:, :100] - after[:, :100]).mean()
    assert dub_error <= 1.25 * codec_error + 0.2, (dub_error, codec_error)
    mouth = np.abs(source[:, 170:240, 280:360] - after[:, 170:240, 280:360]).mean()
    assert mouth > 10 * codec_error  # the generated mouth region differs


def test_installed_entry_point_reports_errors_with_exit_code_2(tmp_path: Path) -> None:
    lipdub = Path(sys.executable).with_name("lipdub")
    result = subprocess.run(
        [str(lipdub), "dub", "--video", str(tmp_path / "x.mp4"), "--audio", "a.wav",
         "--output", str(tmp_path / "o.mp4")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "does not exist" in result.stderr


CHECK_ONLY = """
import sys, time
started = time.perf_counter()
from typer.testing import CliRunner
from lipdub.cli import app
result = CliRunner().invoke(app, ["dub", *sys.argv[1:]])
print(result.exit_code, round(time.perf_counter() - started, 2),
      *[m for m in ("mediapipe", "torch") if m in sys.modules])
print(result.output)
"""


def test_bad_inputs_are_refused_before_any_model_loads(tmp_path: Path,
                                                       talking_clip: Path) -> None:
    """A missing or broken input is reported before the face models (mediapipe) or torch
    are even imported, so the answer is immediate (the time is printed, not asserted)."""
    broken = tmp_path / "broken.mp4"
    broken.write_text("not a video\n" * 100)
    for video, audio, message in [(tmp_path / "missing.mp4", talking_clip, "does not exist"),
                                  (broken, talking_clip, "could not be read as media"),
                                  (talking_clip, tmp_path / "none.wav", "does not exist")]:
        done = subprocess.run([sys.executable, "-c", CHECK_ONLY, "--video", str(video),
                               "--audio", str(audio), "--output", str(tmp_path / "o.mp4"),
                               "--engine", "wav2lip", "--restore", "auto"],
                              capture_output=True, text=True, timeout=120)
        first, *rest = done.stdout.splitlines()
        code, seconds, *loaded = first.split()
        print(f"{video.name}: refused in {seconds} s")
        assert code == "2" and message in " ".join(" ".join(rest).split()), done.stdout
        assert loaded == [], f"{loaded} imported before the input was checked"


def test_a_dub_prints_only_our_own_lines(tmp_path: Path, talking_clip: Path,
                                        short_voice: Path) -> None:
    """MediaPipe's and TensorFlow Lite's native start-up lines are not shown (they are with
    --verbose, which shows the filter is what hides them); progress and summary are."""
    lipdub = Path(sys.executable).with_name("lipdub")
    said = {}
    for flags in ([], ["--verbose"]):
        done = subprocess.run(
            [str(lipdub), *flags, "dub", "--video", str(talking_clip), "--audio",
             str(short_voice), "--output", str(tmp_path / f"out{len(flags)}.mp4"), "--engine",
             "warp"], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        said[bool(flags)] = done.stderr
    noise = ("W0000", "I0000", "TensorFlow Lite", "absl::", "inference_feedback_manager")
    assert not [line for line in said[False].splitlines() if any(n in line for n in noise)]
    assert "lip-sync" in said[False]  # our progress is there
    assert any(n in said[True] for n in noise)  # and what was hidden is real


def test_demo_inputs_are_real_speech_like_media(tmp_path: Path) -> None:
    from lipdub.demo import make_demo_inputs

    inputs = make_demo_inputs(tmp_path, seconds=2.0, spec=ClipSpec(width=320, height=180,
                                                                   face_height=80))
    got = inspect_output(inputs.video)
    assert got.frames == 50 and got.audio_seconds == pytest.approx(2.0, abs=0.05)
    assert speech_like(SpeechSpec(seconds=1.0, seed=7)).std() > 0.01


def test_the_demo_dubs_its_clip_and_writes_the_side_by_side_preview(tmp_path: Path) -> None:
    """What `bash scripts/demo.sh` runs (the README's first command)."""
    code, text = run_cli("demo", "--out", str(tmp_path), "--seconds", "2")
    assert code == 0, text
    dubbed, preview = tmp_path / "dubbed.mp4", tmp_path / "dubbed.preview.mp4"
    assert f"preview (source | dubbed): {preview}" in " ".join(text.split())
    got, side_by_side = inspect_output(dubbed), inspect_output(preview)
    assert got.frames == 50 and side_by_side.frames == got.frames
    side = 2 * round(got.width * 360 / got.height / 2)  # each half scaled to 360 high
    assert (side_by_side.width, side_by_side.height) == (2 * side, 360)
    assert side_by_side.audio_seconds == pytest.approx(got.audio_seconds, abs=0.05)
    assert_no_partial_files(tmp_path)
