"""Casting a dub: two people in a dialogue, each dubbed with their own character's new line
in one pass, their faces found automatically or pinned by an editor."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from lipdub.audio.samples import decoded_samples
from lipdub.cast import Character, FaceBox, FaceBoxes, FacePoint, parse_face
from lipdub.cast_dub import cast_scene, check_cast, dub_cast
from lipdub.casting import line_activity
from lipdub.engines.registry import build_engines
from lipdub.engines.warp.articulation import articulation_track
from lipdub.errors import BadOptionError, InputNotFoundError
from lipdub.faces.speaking import loudness, mouth_openness
from lipdub.media.decode import iter_frames
from lipdub.media.probe import probe_video
from lipdub.pipeline import DubReport
from lipdub.samples.dialogue import Dialogue, face_at
from lipdub.samples.speech import write_wav
from lipdub.scene import Scene
from tests.test_cli_dub import run_cli

FPS = 25.0


class StageLog:
    def __init__(self) -> None:
        self.started: list[str] = []

    def start(self, stage: str, total: int) -> None:
        self.started.append(stage)

    def advance(self, stage: str, amount: int = 1) -> None:
        pass

    def finish(self, stage: str) -> None:
        pass


@pytest.fixture(scope="module")
def cast_dub(dialogue: Dialogue, new_lines: tuple[Path, Path],
             tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """The dialogue dubbed with both new lines, every face found automatically."""
    output = tmp_path_factory.mktemp("cast") / "dubbed.mp4"
    cast = [Character("anna", new_lines[0]), Character("ben", new_lines[1])]
    report, casting, scene = dub_cast(dialogue.path, cast, output,
                                      build_engines(2, "warp", None))
    return output, report, casting, scene


def _left_or_right(dialogue: Dialogue, scene: Scene, person: int) -> int:
    shown = np.flatnonzero(scene.people.present(person))
    return face_at(dialogue, int(shown[0]), scene.people.boxes[person, shown[0]])


def test_each_face_is_cast_to_the_character_whose_line_it_speaks(dialogue: Dialogue,
                                                                 cast_dub) -> None:  # noqa: ANN001
    _, report, casting, scene = cast_dub
    assert len(casting.roles) == 6  # two people in each of the three shots
    for role in casting.roles:
        side = _left_or_right(dialogue, scene, role.person)
        assert role.character == ("anna", "ben")[side], role
        assert role.confidence >= 0.9 and not role.pinned  # measured 0.966-1.0
    assert {r["source"] for r in casting.report()} == {"auto"}
    assert report.face_frames == report.output_frames == probe_video(dialogue.path).frame_count
    assert not report.warnings


def test_each_mouth_follows_its_own_line_and_the_listener_stays_closed(
        dialogue: Dialogue, new_lines: tuple[Path, Path], cast_dub) -> None:  # noqa: ANN001
    output, _, casting, scene = cast_dub
    info = probe_video(output)
    opening = mouth_openness(iter_frames(info), scene.people)
    lines = {}
    for name, path in zip(("anna", "ben"), new_lines, strict=True):
        with decoded_samples(path) as samples:
            line = samples[0:len(samples)]
        lines[name] = (articulation_track(line, FPS, info.frame_count).openness
                       [:info.frame_count], line_activity(line, FPS, info.frame_count))
    for role in casting.roles:
        shown = scene.people.present(role.person) & ~np.isnan(opening[role.person])
        own, own_heard = lines[role.character]
        other, other_heard = lines[({"anna", "ben"} - {role.character}).pop()]
        mouth = opening[role.person]
        # Measured: 0.96-0.99 with its own line, -0.69 to -0.62 with the other's.
        assert np.corrcoef(mouth[shown], own[shown])[0, 1] >= 0.5, role
        assert np.corrcoef(mouth[shown], other[shown])[0, 1] <= 0.2, role
        # While the other speaks, this face listens with its mouth closed: its widest
        # opening then is a small share of its opening when it speaks (measured 0.11-0.19).
        listening = shown & other_heard & ~own_heard
        speaking = shown & own_heard
        assert listening.sum() > 15 and speaking.sum() > 15
        assert np.max(mouth[listening]) <= 0.35 * np.percentile(mouth[speaking], 90), role


def test_the_output_sounds_like_the_lines_mixed(new_lines: tuple[Path, Path],
                                                cast_dub) -> None:  # noqa: ANN001
    output, report, _, _ = cast_dub
    frames = report.output_frames
    with decoded_samples(output) as out:
        heard = loudness(out, FPS, frames)
    mixed = []
    for path in new_lines:
        with decoded_samples(path) as samples:
            mixed.append(samples[0:len(samples)])
    mix = np.zeros(max(map(len, mixed)), np.float32)
    for line in mixed:
        mix[:len(line)] += line
    expected = loudness(mix, FPS, frames)
    assert np.corrcoef(np.maximum(heard, -40), np.maximum(expected, -40))[0, 1] > 0.95


def test_the_original_lines_decide_the_cast_when_given(
        dialogue: Dialogue, new_lines: tuple[Path, Path], tmp_path: Path,
        cast_dub) -> None:  # noqa: ANN001
    _, _, _, scene = cast_dub
    originals = [tmp_path / "orig-left.wav", tmp_path / "orig-right.wav"]
    for path, line in zip(originals, dialogue.lines, strict=True):
        write_wav(str(path), line)
    # anna's original line is the right person's: the original wins over the new line's
    # timing (which is the left person's).
    casting = cast_scene(scene, [Character("anna", new_lines[0], original=originals[1]),
                                 Character("ben", new_lines[1], original=originals[0])])
    for role in casting.roles:
        side = _left_or_right(dialogue, scene, role.person)
        assert role.character == ("ben", "anna")[side], role


def _face_centre(dialogue: Dialogue, side: int, frame: int) -> tuple[float, float]:
    x, y = dialogue.centres[side][frame]
    return float(x), float(y)


def test_an_editor_pins_a_face_with_a_point_or_a_box(
        dialogue: Dialogue, new_lines: tuple[Path, Path], cast_dub) -> None:  # noqa: ANN001
    _, _, _, scene = cast_dub
    x, y = _face_centre(dialogue, 1, 10)  # the right person, in the first shot
    for face in (FacePoint(10, x, y), FaceBox(10, (x - 40, y - 50, x + 40, y + 30))):
        casting = cast_scene(scene, [Character("anna", new_lines[0], face),
                                     Character("ben", new_lines[1])])
        first_shot = [r for r in casting.roles if r.shot == 0]
        pinned = [r for r in first_shot if r.pinned]
        assert len(pinned) == 1 and pinned[0].character == "anna"
        assert _left_or_right(dialogue, scene, pinned[0].person) == 1
        assert pinned[0].to_dict()["source"] == "editor"
        # In the other shots, anna is still found automatically: the left person.
        for role in casting.roles:
            if role.shot > 0 and role.character == "anna":
                assert _left_or_right(dialogue, scene, role.person) == 0


def test_per_frame_boxes_are_used_as_given(new_lines: tuple[Path, Path], tmp_path: Path,
                                           cast_dub) -> None:  # noqa: ANN001
    _, _, _, scene = cast_dub
    boxes_file = tmp_path / "boxes.json"
    boxes_file.write_text(json.dumps({"5": [100, 80, 220, 230], "6": [102, 80, 222, 230]}))
    face = parse_face({"boxes": str(boxes_file)}, "cast[0].face")
    assert isinstance(face, FaceBoxes)
    casting = cast_scene(scene, [Character("anna", new_lines[0], face),
                                 Character("ben", new_lines[1])])
    track = casting.tracks["anna"]
    assert np.flatnonzero(track.has_face).tolist() == [5, 6]
    assert track.boxes[6].tolist() == [102, 80, 222, 230]
    assert all(r.character != "anna" for r in casting.roles)  # no face cast automatically


def test_bad_casting_input_is_refused_naming_the_field(
        dialogue: Dialogue, new_lines: tuple[Path, Path], tmp_path: Path,
        cast_dub) -> None:  # noqa: ANN001
    _, _, _, scene = cast_dub
    ben = Character("ben", new_lines[1])
    with pytest.raises(BadOptionError, match=r"cast\[0\]\.face: the point \(5, 5\) on "
                                             r"frame 10 hits no face") as hit:
        cast_scene(scene, [Character("anna", new_lines[0], FacePoint(10, 5, 5)), ben])
    assert "Faces found on that frame" in hit.value.hint
    with pytest.raises(BadOptionError, match=r"cast\[0\]\.face\.frame 9999 is past"):
        cast_scene(scene, [Character("anna", new_lines[0], FacePoint(9999, 5, 5)), ben])
    x, y = _face_centre(dialogue, 0, 10)
    with pytest.raises(BadOptionError, match=r"cast\[1\]\.face picks the face already"):
        cast_scene(scene, [Character("anna", new_lines[0], FacePoint(10, x, y)),
                           Character("ben", new_lines[1], FacePoint(12, x, y))])
    silent = replace(scene, level_db=None)
    with pytest.raises(BadOptionError, match=r"cast\[0\] \('anna'\).*no sound"):
        cast_scene(silent, [Character("anna", new_lines[0]), ben])
    with pytest.raises(BadOptionError, match="empty"):
        check_cast([])
    with pytest.raises(BadOptionError, match=r"cast\[1\]\.character 'ben' .* given twice"):
        check_cast([ben, ben])
    with pytest.raises(InputNotFoundError, match="missing.wav"):
        check_cast([Character("anna", tmp_path / "missing.wav")])
    for bad in ({"frame": -1, "x": 1, "y": 1}, {"frame": 1, "box": [5, 5, 1, 1]},
                {"x": 1}, "left", {"boxes": str(tmp_path / "none.json")}):
        with pytest.raises(BadOptionError, match=r"cast\[0\]\.face"):
            parse_face(bad, "cast[0].face")


def test_a_corrected_cast_reuses_the_stored_analysis(
        dialogue: Dialogue, new_lines: tuple[Path, Path], tmp_path: Path,
        cast_dub) -> None:  # noqa: ANN001
    _, _, _, scene = cast_dub
    x, y = _face_centre(dialogue, 1, 10)
    stages = StageLog()
    report, casting, again = dub_cast(
        dialogue.path, [Character("anna", new_lines[0], FacePoint(10, x, y)),
                        Character("ben", new_lines[1])],
        tmp_path / "corrected.mp4", build_engines(2, "warp", None), progress=stages,
        scene=scene)
    assert again is scene and "faces" not in stages.started  # no second analysis
    assert stages.started == ["lip-sync"]
    assert isinstance(report, DubReport) and report.output_frames > 0
    assert any(r.pinned and r.character == "anna" for r in casting.roles)


def test_the_cli_dubs_a_cast_and_prints_it(dialogue: Dialogue, new_lines: tuple[Path, Path],
                                           tmp_path: Path) -> None:
    x, y = _face_centre(dialogue, 1, 10)
    output = tmp_path / "cli.mp4"
    code, text = run_cli("dub", "--video", str(dialogue.path), "--output", str(output),
                         "--cast", f"anna={new_lines[0]}",
                         "--cast", f"ben={new_lines[1]}@10:{x:.0f},{y:.0f}")
    assert code == 0, text
    assert probe_video(output).frame_count == probe_video(dialogue.path).frame_count
    rows = [line.split("│")[1:6] for line in text.splitlines() if line.count("│") == 6]
    roles = {(r[0].strip(), r[2].strip(), r[4].strip()) for r in rows}
    assert ("0", "ben", "editor") in roles and ("0", "anna", "auto") in roles
    assert {"1", "2"} <= {shot for shot, _, _ in roles}
    assert "faces" in text and "casting" in text  # the analysis shows in the stage table


def test_the_cli_refuses_a_bad_cast_before_the_analysis(
        dialogue: Dialogue, new_lines: tuple[Path, Path], tmp_path: Path) -> None:
    output = tmp_path / "bad.mp4"
    for args, message in (
            (["--cast", "anna"], "is not NAME=LINE"),
            (["--cast", f"anna={new_lines[0]}@left"], "the face 'left'"),
            (["--cast", f"anna={tmp_path / 'none.wav'}"], "none.wav' does not exist"),
            (["--cast", f"anna={new_lines[0]}", "--face", "center"], "With --cast"),
            ([], "No new audio was given")):
        code, text = run_cli("dub", "--video", str(dialogue.path), "--output", str(output),
                             *args)
        assert code == 2 and message in text, text
        assert "faces" not in text  # refused before any analysis
    assert not output.exists()
    cast_file = tmp_path / "cast.json"
    cast_file.write_text(json.dumps([{"character": "anna"}]))
    code, text = run_cli("dub", "--video", str(dialogue.path), "--output", str(output),
                         "--cast-file", str(cast_file))
    assert code == 2 and "cast[0].audio is missing" in text, text


class FrameCounts:
    def __init__(self) -> None:
        self.totals: dict[str, int] = {}
        self.done: dict[str, int] = {}

    def start(self, stage: str, total: int) -> None:
        self.totals[stage] = total

    def advance(self, stage: str, amount: int = 1) -> None:
        self.done[stage] = self.done.get(stage, 0) + amount

    def finish(self, stage: str) -> None:
        pass


def test_the_scene_reports_each_pass_as_its_own_phase_one_unit_a_frame(
        dialogue: Dialogue) -> None:
    """Progress units of a frame phase are frames (the frames metric adds them up)."""
    from lipdub.jobs.metrics import FRAME_PHASES
    from lipdub.progress import MOUTHS
    from lipdub.scene import analyse_scene

    info = probe_video(dialogue.path)
    counts = FrameCounts()
    analyse_scene(info, progress=counts)
    assert counts.totals == {"faces": info.frame_count, MOUTHS: info.frame_count}
    assert counts.done == counts.totals
    assert set(counts.done) <= set(FRAME_PHASES)
