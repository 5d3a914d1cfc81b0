"""Dubbing only the ranges asked for: frames outside them stay as filmed, each range fades
in and out over 4 frames, and bad ranges are refused with what was wrong."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lipdub.cli import app
from lipdub.engines.warp.engine import WarpEngine
from lipdub.errors import BadOptionError
from lipdub.media.encode import DubWriter
from lipdub.pipeline import dub
from lipdub.ranges import RAMP_FRAMES, FrameRange, blend_weights, parse_ranges
from tests.media_helpers import read_frames

FPS = Fraction(25)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def test_ranges_in_seconds_frames_and_timecode() -> None:
    ranges = parse_ranges(["2.4-3.2", "20f-40f", "00:00:04:00-00:00:04:12"], FPS, 200)
    assert ranges == [FrameRange(20, 40), FrameRange(60, 80), FrameRange(100, 112)]
    assert parse_ranges(["00:00:01;05-00:00:02;00"], Fraction(30000, 1001)) == \
        [FrameRange(35, 60)]  # drop-frame separator, 30 frames a second counted


@pytest.mark.parametrize(("specs", "message"), [
    (["1-2", "1.5-3"], "Ranges overlap"),
    (["3-9"], "runs past the end of the output"),
    (["00:00:01:25-00:00:02:00"], "is not a timecode at this video's 25 frames/s"),
    (["2-1"], "ends before it starts"),
    (["soon-later"], "is not understood"),
    (["1-2-3"], "is not START-END"),
])
def test_bad_ranges_say_what_is_wrong(specs: list[str], message: str) -> None:
    with pytest.raises(BadOptionError, match=message):
        parse_ranges(specs, FPS, 200)


def test_each_range_fades_in_and_out_over_four_frames() -> None:
    weights = blend_weights([FrameRange(10, 30), FrameRange(40, 45)], 50)
    ramp = np.arange(1, RAMP_FRAMES + 1) / (RAMP_FRAMES + 1)
    assert RAMP_FRAMES == 4
    assert np.allclose(weights[10:14], ramp) and np.allclose(weights[26:30], ramp[::-1])
    assert (weights[14:26] == 1).all()
    assert (weights[:10] == 0).all() and (weights[30:40] == 0).all() and (weights[45:] == 0).all()
    # A range shorter than two ramps fades in and straight out again.
    assert np.allclose(weights[40:45], [1 / 3, 2 / 3, 1, 2 / 3, 1 / 3])
    assert blend_weights(None, 50) is None


def test_a_dub_of_two_ranges_leaves_everything_else_as_filmed(
        tmp_path: Path, talking_clip: Path, new_voice: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    encoded: list[np.ndarray] = []  # the frames the pipeline hands to the encoder
    write = DubWriter.write

    def spy(self: DubWriter, rgb: np.ndarray) -> None:
        encoded.append(rgb.copy())
        write(self, rgb)

    monkeypatch.setattr(DubWriter, "write", spy)
    ranges = parse_ranges(["0.8-1.6", "2.4-3.2"], FPS)  # frames 20-40 and 60-80
    report = dub(talking_clip, new_voice, tmp_path / "ranges.mp4", WarpEngine(),
                 ranges=ranges)
    partial, encoded[:] = np.stack(encoded).astype(np.int16), []
    dub(talking_clip, new_voice, tmp_path / "whole.mp4", WarpEngine())
    full = np.stack(encoded).astype(np.int16)
    source = np.stack(read_frames(talking_clip)).astype(np.int16)[:len(partial)]
    inside = np.zeros(len(partial), bool)
    inside[20:40] = inside[60:80] = True
    assert report.outside_ranges == (~inside).sum() == 60
    assert report.face_frames == 40
    # Outside the ranges the decoded source goes to the encoder untouched, bit for bit.
    assert np.array_equal(partial[~inside], source[~inside])
    # ... and after encoding stays as close to the source's own re-encode as x264 allows
    # (it looks ahead and predicts from dubbed frames): measured 44.6 dB, whole frame.
    kept = tmp_path / "kept.mp4"
    dub(talking_clip, new_voice, kept, WarpEngine(), ranges=[])
    out = np.stack(read_frames(tmp_path / "ranges.mp4")).astype(np.int16)
    again = np.stack(read_frames(kept)).astype(np.int16)
    assert psnr(out[~inside], again[~inside]) > 40.0
    # Inside, at full weight: the whole dub's mouth (the engine's temporal state starts
    # afresh at a range, so not to the bit: measured 59.8 dB).
    mouth = (slice(None), slice(150, 260), slice(250, 390))
    assert psnr(partial[24:36], full[24:36]) > 50.0
    # The fades: the dub's share of the mouth's change grows over a range's first 4
    # frames and shrinks over its last 4, in steps of a fifth.
    change = np.abs(full - source)[mouth].mean(axis=(1, 2, 3))
    share = np.abs(partial - source)[mouth].mean(axis=(1, 2, 3)) / np.maximum(change, 1e-6)
    ramp = np.arange(1, 5) / 5
    for first, last in ((20, 40), (60, 80)):
        for k, weight in [*zip(range(first, first + 4), ramp, strict=True),
                          *zip(range(last - 4, last), ramp[::-1], strict=True)]:
            if change[k] > 2.0:  # frames where the whole dub moves the mouth visibly
                assert abs(share[k] - weight) < 0.12, (k, share[k], weight)


def test_the_cli_dubs_ranges_and_refuses_bad_ones(tmp_path: Path, talking_clip: Path,
                                                  new_voice: Path) -> None:
    out = tmp_path / "out.mp4"
    base = ["dub", "--video", str(talking_clip), "--audio", str(new_voice), "--output",
            str(out), "--engine", "warp"]
    runner = CliRunner()
    done = runner.invoke(app, [*base, "--range", "1-2", "--range", "00:00:03:00-00:00:03:10"])
    assert done.exit_code == 0, done.output
    assert "left as filmed outside the ranges 65" in " ".join(done.output.split())
    out.unlink()
    for ranges, message in ((["1-2", "1.5-3"], "Ranges overlap"),
                            (["3.5-9"], "runs past the end of the output"),
                            (["00:00:01:30-00:00:02:00"], "not a timecode at this video")):
        failed = runner.invoke(app, [*base, *[x for r in ranges for x in ("--range", r)]])
        assert failed.exit_code == 2, failed.output
        assert message in " ".join(failed.output.split())
        assert not out.exists()
