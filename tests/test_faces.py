"""Face detection, choosing a person, following them, and never smoothing across a cut."""

from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest
from skimage import data

from lipdub.errors import BadOptionError
from lipdub.faces.crop import crop_box
from lipdub.faces.detect import FaceDetector
from lipdub.faces.select import FaceSelector
from lipdub.faces.track import analyse_faces


def _face(height: int) -> np.ndarray:
    photo = data.astronaut()[40:300, 110:370]  # the head and shoulders
    return cv2.resize(photo, (height, height), interpolation=cv2.INTER_AREA)


def two_people(left: int = 200, right: int = 140, shift: int = 0) -> np.ndarray:
    frame = np.full((360, 640, 3), 90, dtype=np.uint8)
    frame[60 : 60 + left, 40 + shift : 40 + shift + left] = _face(left)
    frame[120 : 120 + right, 440 + shift : 440 + shift + right] = _face(right)
    return frame


def test_detector_finds_both_people() -> None:
    detector = FaceDetector()
    found = detector.detect(two_people())
    detector.close()
    assert len(found) == 2
    centres = sorted(float(d.center[0]) for d in found)
    assert centres[0] < 320 < centres[1]


@pytest.mark.parametrize(("spec", "left_side"), [
    ("largest", True), ("0", True), ("1", False), ("450,120,140,140", False),
])
def test_face_selection_follows_the_chosen_person(spec: str, left_side: bool) -> None:
    frames = [two_people(shift=k) for k in range(12)]
    track = analyse_faces(iter(frames), len(frames), FaceSelector.parse(spec), detect_every=4)
    assert track.has_face.all()
    centres = (track.boxes[:, 0] + track.boxes[:, 2]) / 2
    assert np.all(centres < 320) if left_side else np.all(centres > 320)
    # It moves with the person (1 px a frame).
    assert 6 <= centres[-1] - centres[0] <= 16


def test_center_selection_and_bad_specs() -> None:
    frame = two_people(left=120, right=200)
    track = analyse_faces(iter([frame]), 1, FaceSelector.parse("center"))
    assert track.has_face[0]
    for bad in ("biggest", "1,2,3", "0,0,-5,5"):
        with pytest.raises(BadOptionError):
            FaceSelector.parse(bad)


def test_scene_cuts_start_new_shots_and_boxes_are_not_smoothed_across() -> None:
    first = [two_people(left=200, right=100) for _ in range(10)]
    second = []
    for _ in range(10):
        frame = np.full((360, 640, 3), (20, 60, 160), dtype=np.uint8)
        frame[100:260, 420:580] = _face(160)
        second.append(frame)
    track = analyse_faces(iter(first + second), 20, FaceSelector.parse("largest"))
    assert list(track.shot[:10]) == [0] * 10 and list(track.shot[10:]) == [1] * 10
    left_before = float(track.boxes[9, 0])
    left_after = float(track.boxes[10, 0])
    assert left_before < 200 and left_after > 400  # a clean jump at the cut, no blending


def test_frames_without_a_face_are_marked_for_pass_through() -> None:
    blank = np.full((360, 640, 3), 90, dtype=np.uint8)
    frames = [two_people()] * 5 + [blank] * 5 + [two_people()] * 5
    track = analyse_faces(iter(frames), 15, FaceSelector.parse("largest"), detect_every=2)
    assert track.has_face[:5].all() and track.has_face[11:].all()
    assert not track.has_face[5:10].any()  # flow guesses after the last sighting dropped too


def test_crop_pads_down_to_the_chin_and_stays_inside_the_frame() -> None:
    box = crop_box(np.array([600, 300, 700, 400], dtype=np.float32), (360, 640))
    assert box is not None
    x0, y0, x1, y1 = box
    assert x1 == 640 and y1 == 360  # clipped
    assert crop_box(np.array([10, 10, 15, 15], dtype=np.float32), (360, 640)) is None
    x0, y0, x1, y1 = crop_box(np.array([100, 100, 200, 200], dtype=np.float32), (360, 640))
    assert y0 == 100 and y1 == 222  # 22 % more below for the chin


def test_scheduled_detections_run_ahead_and_a_cut_off_schedule_is_detected_at_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Every 5th frame's detections are made on the read-ahead thread; a cut at frame 7
    (off that schedule) is searched on the tracking thread, on that very frame."""
    seen: list[tuple[int, str]] = []
    detect = FaceDetector.detect

    def spy(self: FaceDetector, rgb: np.ndarray) -> list:
        seen.append((int(rgb[0, 0, 2]), threading.current_thread().name))
        return detect(self, rgb)

    monkeypatch.setattr(FaceDetector, "detect", spy)
    frames = []
    for k in range(15):  # frame k carries its number in a corner pixel's blue
        if k < 7:
            frame = two_people(left=200, right=100)
        else:
            frame = np.full((360, 640, 3), (20, 60, 160), dtype=np.uint8)
            frame[100:260, 420:580] = _face(160)
        frame[0, 0, 2] = k
        frames.append(frame)
    track = analyse_faces(iter(frames), 15, FaceSelector.parse("largest"), detect_every=5)
    ahead = sorted(k for k, thread in seen if thread == "lipdub-read-ahead")
    here = sorted(k for k, thread in seen if thread == threading.current_thread().name)
    assert ahead == [0, 5, 10]
    assert here == [7, 12]  # the cut, and five frames after it
    assert list(track.shot[:7]) == [0] * 7 and list(track.shot[7:]) == [1] * 8
    assert track.boxes[6, 0] < 200 and track.boxes[7, 0] > 400
