"""A cast: the characters of a scene, each with their own new line (a dialogue stem), and
which face on screen each of them is. A face is found automatically (the person who is
speaking while the character's line is heard, lipdub.casting) or pinned by an editor: a
point or a box on one frame picks the person there for that shot; per-frame boxes give the
face's place outright. The result is one face track per character, so that each can be
dubbed with its own line in one render pass."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lipdub.errors import BadOptionError
from lipdub.faces.boxes import iou

# The gateway reads this module's names and checks requests with it: the face analysis
# behind casting is imported where a cast is made.
if TYPE_CHECKING:
    from lipdub.casting import Role
    from lipdub.faces.people import People
    from lipdub.faces.speaking import Speaking
    from lipdub.faces.track import FaceTrack

AUTO = "auto"
_PIN_IOU = 0.3  # a pinned box must overlap a detected face this much to pick it
MAX_CHARACTERS = 8


@dataclass(frozen=True)
class FacePoint:
    """The face under pixel (x, y) of a frame (and that person through their shot)."""

    frame: int
    x: float
    y: float


@dataclass(frozen=True)
class FaceBox:
    """The face that best overlaps a box (x0, y0, x1, y1) on a frame."""

    frame: int
    box: tuple[float, float, float, float]


@dataclass(frozen=True)
class FaceBoxes:
    """The face's box on every frame given (the editor's own track): used as it is."""

    boxes: dict[int, tuple[float, float, float, float]]


FaceChoice = FacePoint | FaceBox | FaceBoxes | None  # None: found automatically


@dataclass(frozen=True)
class Character:
    name: str
    line: Path  # the new line: drives this character's face
    face: FaceChoice = None
    original: Path | None = None  # the original-language line, to find the face by


@dataclass
class Casting:
    tracks: dict[str, FaceTrack]  # per character: its face, NaN where it is not on screen
    roles: list[Role]  # per person: the character they play, or None
    warnings: list[str]

    def report(self) -> list[dict]:
        """Per shot, who plays whom: what an editor checks and corrects."""
        return [role.to_dict() for role in self.roles]


def _box(values: object, what: str) -> tuple[float, float, float, float]:
    if (not isinstance(values, list | tuple) or len(values) != 4
            or not all(isinstance(v, int | float) and v >= 0 for v in values)
            or values[2] <= values[0] or values[3] <= values[1]):
        raise BadOptionError(f"{what} is not a box: {values!r}.",
                             "Give [x0, y0, x1, y1] in pixels, with x1 > x0 and y1 > y0.")
    return (float(values[0]), float(values[1]), float(values[2]), float(values[3]))


def _frame(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise BadOptionError(f"{what}.frame is not a frame number: {value!r}.",
                             "Give the frame as a whole number from 0.")
    return value


def parse_face(value: object, what: str, read_boxes=None) -> FaceChoice:  # noqa: ANN001
    """A face as a request gives it: "auto", {"frame", "x", "y"}, {"frame", "box"}, or
    {"boxes": <JSON file>}. `read_boxes(uri) -> Path` fetches a boxes file (CLI: a path)."""
    if value is None or value == AUTO:
        return None
    if isinstance(value, dict):
        if set(value) == {"frame", "x", "y"}:
            x, y = value["x"], value["y"]
            if not all(isinstance(v, int | float) and v >= 0 for v in (x, y)):
                raise BadOptionError(f"{what} has a point outside the frame: ({x}, {y}).",
                                     "Give x and y in pixels from the top left corner.")
            return FacePoint(_frame(value["frame"], what), float(x), float(y))
        if set(value) == {"frame", "box"}:
            return FaceBox(_frame(value["frame"], what), _box(value["box"], what + ".box"))
        if set(value) == {"boxes"} and isinstance(value["boxes"], str):
            path = read_boxes(value["boxes"]) if read_boxes else Path(value["boxes"])
            return read_face_boxes(path, what + ".boxes")
    raise BadOptionError(f"{what} is not understood: {value!r}.",
                         'Give "auto", {"frame": N, "x": X, "y": Y}, {"frame": N, "box": '
                         '[x0, y0, x1, y1]} or {"boxes": "<JSON file of per-frame boxes>"}.')


def read_face_boxes(path: Path, what: str) -> FaceBoxes:
    """Per-frame boxes: a JSON object {"<frame>": [x0, y0, x1, y1], ...}."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadOptionError(f"{what}: the boxes file cannot be read ({exc}).",
                             'Give a JSON object like {"120": [400, 200, 520, 340]}.') from exc
    if not isinstance(data, dict) or not data:
        raise BadOptionError(f"{what}: the boxes file holds no boxes.",
                             'Give a JSON object like {"120": [400, 200, 520, 340]}.')
    boxes = {}
    for frame, box in data.items():
        if not str(frame).isdigit():
            raise BadOptionError(f"{what}: '{frame}' is not a frame number.",
                                 "Key each box by its frame number from 0.")
        boxes[int(frame)] = _box(box, f"{what}[{frame}]")
    return FaceBoxes(boxes)


def _person_at(people: People, choice: FacePoint | FaceBox, what: str) -> int:
    """The person a pin picks, or a clear error naming the faces that frame holds."""
    frame = choice.frame
    if frame >= people.boxes.shape[1]:
        raise BadOptionError(f"{what}.frame {frame} is past the video's end "
                             f"({people.boxes.shape[1]} frames).",
                             "Give a frame inside the video.")
    present = np.flatnonzero(~np.isnan(people.boxes[:, frame, 0]))
    boxes = people.boxes[present, frame]
    if isinstance(choice, FacePoint):
        inside = [(float((b[2] - b[0]) * (b[3] - b[1])), int(p))
                  for p, b in zip(present, boxes, strict=True)
                  if b[0] <= choice.x <= b[2] and b[1] <= choice.y <= b[3]]
        picked = min(inside)[1] if inside else None  # the smallest: the nearer face
        where = f"the point ({choice.x:g}, {choice.y:g})"
    else:
        overlaps = [(iou(np.array(choice.box), b), int(p))
                    for p, b in zip(present, boxes, strict=True)]
        best = max(overlaps, default=(0.0, -1))
        picked = best[1] if best[0] >= _PIN_IOU else None
        where = f"the box {list(choice.box)}"
    if picked is None:
        found = ", ".join(str([round(float(v)) for v in b]) for b in boxes) or "none"
        raise BadOptionError(f"{what}: {where} on frame {frame} hits no face.",
                             f"Faces found on that frame (x0, y0, x1, y1): {found}.")
    return picked


def cast_characters(people: People, speaking: Speaking, characters: list[Character],
                    lines: dict[str, np.ndarray]) -> Casting:
    """Each character's face track. `lines`: per character, the frames where their line
    (the original if given, else the new one) is heard (casting.line_activity)."""
    from lipdub.casting import propose_cast
    from lipdub.faces.track import FaceTrack

    pinned: dict[int, str] = {}
    for i, character in enumerate(characters):
        if isinstance(character.face, FacePoint | FaceBox):
            what = f"cast[{i}].face"
            person = _person_at(people, character.face, what)
            if person in pinned:
                raise BadOptionError(f"{what} picks the face already given to "
                                     f"'{pinned[person]}'.",
                                     "Give each character a different face.")
            pinned[person] = character.name
    given = {c.name for c in characters if isinstance(c.face, FaceBoxes)}
    roles = propose_cast(people, speaking,
                         {name: on for name, on in lines.items() if name not in given},
                         pinned)
    tracks, warnings = {}, []
    for character in characters:
        boxes = np.full((len(people.shot), 4), np.nan, np.float32)
        if isinstance(character.face, FaceBoxes):
            for frame, box in character.face.boxes.items():
                if frame < len(boxes):
                    boxes[frame] = box
        else:
            for role in roles:
                if role.character == character.name:
                    shown = people.present(role.person)
                    boxes[shown] = people.boxes[role.person, shown]
        if np.isnan(boxes[:, 0]).all():
            warnings.append(f"Character '{character.name}' was cast to no face on screen: "
                            "their line is heard but no lips are re-synced for it. Pin "
                            "their face with a point or a box if they are on screen.")
        tracks[character.name] = FaceTrack(boxes=boxes, shot=people.shot,
                                           frame_size=people.frame_size)
    return Casting(tracks, roles, warnings)


def parse_cast(items: object, locate: Callable[[str, str], Path]) -> list[Character]:
    """A cast as a request or a cast file gives it: [{"character": NAME, "audio": LINE,
    "face": FACE (optional, see parse_face), "original": LINE (optional)}, ...].
    `locate(reference, what)`: a line's or a boxes file's local path."""
    if not isinstance(items, list) or not items:
        raise BadOptionError("cast is not a list of characters.",
                             'Give [{"character": "anna", "audio": "anna.wav"}, ...].')
    cast = []
    for i, item in enumerate(items):
        what = f"cast[{i}]"
        if not isinstance(item, dict) or not set(item) <= {"character", "audio", "face",
                                                             "original"}:
            raise BadOptionError(f"{what} is not understood: {item!r}.",
                                 "Give character, audio, and optionally face and original.")
        if not isinstance(item.get("character"), str) or not item["character"]:
            raise BadOptionError(f"{what}.character is missing.", "Name the character.")
        if not isinstance(item.get("audio"), str) or not item["audio"]:
            raise BadOptionError(f"{what}.audio is missing: character "
                                 f"'{item['character']}' has no line.",
                                 "Give the character's new line (a dialogue stem).")
        original = item.get("original")
        cast.append(Character(
            item["character"], locate(item["audio"], what + ".audio"),
            parse_face(item.get("face"), what + ".face",
                       lambda ref, w=what: locate(ref, w + ".face.boxes")),
            locate(original, what + ".original") if original else None))
    return cast


def parse_cast_option(text: str, position: int) -> dict:
    """The CLI's short form NAME=LINE[@FACE], FACE being auto, FRAME:X,Y (a point),
    FRAME:X0,Y0,X1,Y1 (a box) or a JSON file of per-frame boxes: as parse_cast's item."""
    name, equals, rest = text.partition("=")
    line, at, face_text = rest.rpartition("@") if "@" in rest else (rest, "", "")
    if not equals or not name or not line:
        raise BadOptionError(f"--cast '{text}' is not NAME=LINE[@FACE].",
                             "For example --cast anna=anna.wav@120:400,300.")
    item: dict = {"character": name, "audio": line}
    if not at or face_text == AUTO:
        return item
    frame, colon, numbers = face_text.partition(":")
    values = numbers.split(",")
    if colon and frame.isdigit() and len(values) in (2, 4):
        try:
            coords = [float(v) for v in values]
        except ValueError:
            coords = []
        if coords:
            item["face"] = ({"frame": int(frame), "x": coords[0], "y": coords[1]}
                            if len(coords) == 2 else {"frame": int(frame), "box": coords})
            return item
    if face_text.endswith(".json"):
        item["face"] = {"boxes": face_text}
        return item
    raise BadOptionError(f"--cast '{text}': the face '{face_text}' of cast[{position}] is "
                         "not understood.",
                         "Give auto, FRAME:X,Y, FRAME:X0,Y0,X1,Y1 or a .json boxes file.")
