"""Ranges with their own line (a re-take) and ranges for one character of a cast."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from lipdub.audio.samples import decoded_samples
from lipdub.cast import Character
from lipdub.cast_dub import dub_cast
from lipdub.engines.registry import build_engines
from lipdub.engines.warp.articulation import articulation_track
from lipdub.errors import BadOptionError
from lipdub.faces.people import track_people
from lipdub.faces.speaking import mouth_openness
from lipdub.media.decode import iter_frames
from lipdub.media.probe import probe_video
from lipdub.ranges import (
    FrameRange,
    check_characters,
    check_without_video,
    parse_range_option,
    parse_ranges,
)
from lipdub.retakes import FADE_S, splice
from lipdub.samples.dialogue import Dialogue
from lipdub.samples.speech import write_wav
from tests.test_cli_dub import run_cli

RATE = 16_000


def _samples(path: Path) -> np.ndarray:
    with decoded_samples(path) as samples:
        return samples[0:len(samples)]


def test_range_options_characters_and_overlaps() -> None:
    assert parse_range_option("1-2") == "1-2"
    assert parse_range_option("1-2@anna=re.wav") == {"range": "1-2", "character": "anna",
                                                      "audio": "re.wav"}
    assert parse_range_option("00:00:01:00-00:00:02:00=re.wav") == {
        "range": "00:00:01:00-00:00:02:00", "audio": "re.wav"}
    specs = [{"range": "1-3", "character": "anna"}, {"range": "2-4", "character": "ben"}]
    check_without_video(specs)  # two people may talk over each other
    ranges = parse_ranges(specs, Fraction(25))
    assert ranges == [FrameRange(25, 75, "anna"), FrameRange(50, 100, "ben")]
    for overlapping in ([*specs, {"range": "2.5-2.8", "character": "anna"}],
                        [*specs, "3.5-3.9"]):  # a range for everyone overlaps them all
        with pytest.raises(BadOptionError, match="overlap"):
            check_without_video(overlapping)
        with pytest.raises(BadOptionError, match="overlap"):
            parse_ranges(overlapping, Fraction(25))
    with pytest.raises(BadOptionError, match="'carl', who is not in the cast"):
        check_characters([{"range": "1-2", "character": "carl"}], ["anna", "ben"])
    with pytest.raises(BadOptionError, match="not in the cast"):
        check_characters([{"range": "1-2", "character": "anna"}], None)
    with pytest.raises(BadOptionError, match="names no character"):
        check_characters([{"range": "1-2", "audio": "x.wav"}], ["anna"])
    with pytest.raises(BadOptionError, match="range 1 is not understood"):
        parse_ranges([{"range": "1-2", "colour": "red"}], Fraction(25))


def test_a_retake_is_laid_into_its_range_and_nothing_else_changes(
        tmp_path: Path, talking_clip: Path) -> None:
    tone = tmp_path / "tone.wav"
    t = np.arange(3 * RATE) / RATE
    write_wav(str(tone), (0.3 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32))
    info = probe_video(talking_clip)
    spliced = splice(None, info, [FrameRange(25, 65, audio=tone)], tmp_path / "out.flac")
    before, after = _samples(talking_clip), _samples(spliced)
    assert abs(len(after) - len(before)) < RATE // 50
    margin = 0.06  # FADE_S and one audio frame of the bed's gain
    end = min(len(before), len(after))
    outside = np.r_[0:int((1.0 - margin) * RATE), int((2.6 + margin) * RATE):end]
    assert np.max(np.abs(after[outside] - before[outside])) < 1e-3
    inside = after[int((1.0 + margin) * RATE):int((2.6 - margin) * RATE)]
    spectrum = np.abs(np.fft.rfft(inside))
    assert abs(np.argmax(spectrum) * RATE / len(inside) - 1000) < 5  # the tone, alone:
    assert np.sqrt(np.mean(inside**2)) == pytest.approx(0.3 / np.sqrt(2), rel=0.05)
    assert FADE_S <= 0.02  # edits without a click, short enough to keep a line's onset


def test_the_cli_dubs_a_retake_without_a_new_sound_track(
        tmp_path: Path, talking_clip: Path, new_voice: Path) -> None:
    output = tmp_path / "retake.mp4"
    code, text = run_cli("dub", "--video", str(talking_clip), "--output", str(output),
                         "--engine", "warp", "--range", f"1-2.6={new_voice}")
    assert code == 0, text
    assert "left as filmed outside the ranges 60" in text
    info = probe_video(output)
    people = track_people(iter_frames(info), info.frame_count)
    opening = np.nanmax(mouth_openness(iter_frames(info), people), axis=0)
    line = _samples(new_voice)[:int(1.6 * RATE)]
    expected = articulation_track(line, 25.0, 40).openness[:40]
    inside = np.arange(25 + 4, 65 - 4)  # inside the range, past its fades
    # Measured 0.97: the mouth follows the re-take's own line.
    assert np.corrcoef(opening[inside], expected[inside - 25])[0, 1] >= 0.5
    before = _samples(talking_clip)
    after = _samples(output)
    head = slice(0, int(0.9 * RATE))  # before the range: the film's own sound (AAC again)
    assert np.corrcoef(before[head], after[head])[0, 1] > 0.98  # measured 0.9999


def test_a_range_for_one_character_leaves_the_other_as_filmed(
        dialogue: Dialogue, new_lines: tuple[Path, Path], tmp_path: Path) -> None:
    output = tmp_path / "anna-only.mp4"
    cast = [Character("anna", new_lines[0]), Character("ben", new_lines[1])]
    report, casting, scene = dub_cast(dialogue.path, cast, output,
                                      build_engines(2, "warp", None),
                                      ranges=[FrameRange(0, 75, "anna")])
    assert report.outside_ranges == report.output_frames - 75
    source = mouth_openness(iter_frames(probe_video(dialogue.path)), scene.people)
    dubbed = mouth_openness(iter_frames(probe_video(output)), scene.people)
    for role in casting.roles:
        shown = scene.people.present(role.person) & ~np.isnan(dubbed[role.person])
        change = np.abs(dubbed[role.person] - source[role.person])
        if role.character == "anna" and role.shot == 0:
            assert np.nanmax(change[:75]) > 0.07  # re-synced (measured 0.136)
        else:
            # As filmed, to the precision of Face Mesh on a re-encoded frame (measured at
            # most 0.017; an open mouth measures 0.2).
            assert np.max(change[shown]) < 0.04, role
