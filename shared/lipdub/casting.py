"""Casting: which face on screen is which character. Each character brings a dialogue stem
(their original-language line, or their new one: a dub keeps a line where it was said);
in each shot, a face is that character's when it is the one speaking while the stem is
heard. Faces are matched to characters one to one per shot, and a face that speaks none
of the lines is cast as nobody: it stays as filmed (a listener keeps a closed mouth)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from lipdub.audio.samples import Samples
from lipdub.faces.people import People
from lipdub.faces.speaking import Speaking, loudness, speech_frames

MIN_SHARE = 0.3  # a face must be the speaker on this share of a line's frames to get it


@dataclass(frozen=True)
class Role:
    """One person (a face through one shot) and the character they play, or None."""

    person: int
    shot: int
    character: str | None
    confidence: float  # the share of the character's frames in this shot the face spoke
    pinned: bool = False  # chosen by the editor, not found

    def to_dict(self) -> dict:
        return {"person": self.person, "shot": self.shot, "character": self.character,
                "confidence": round(self.confidence, 3),
                "source": "editor" if self.pinned else "auto"}


def line_activity(stem: Samples, fps: float, frame_count: int) -> np.ndarray:
    """Per frame: whether the stem holds speech there."""
    return speech_frames(loudness(stem, fps, frame_count), fps)


def propose_cast(people: People, speaking: Speaking, lines: dict[str, np.ndarray],
                 pinned: dict[int, str] | None = None) -> list[Role]:
    """`lines`: each character's speech activity per frame (line_activity). `pinned`:
    persons the editor has cast (person -> character); in their shot, the rest are cast
    around them. One Role per person, in person order."""
    pinned = pinned or {}
    roles: dict[int, Role] = {p: Role(p, int(people.shot_of_person[p]), name, 1.0, True)
                              for p, name in pinned.items()}
    for shot in np.unique(people.shot_of_person):
        persons = np.array([p for p in np.flatnonzero(people.shot_of_person == shot)
                            if p not in pinned], int)
        taken = {name for p, name in pinned.items() if people.shot_of_person[p] == shot}
        names = [name for name in lines if name not in taken]
        frames = people.shot == shot
        share = np.zeros((len(persons), len(names)))
        for c, name in enumerate(names):
            heard = frames & lines[name]
            if heard.sum() == 0:
                continue
            for p, person in enumerate(persons):
                share[p, c] = float(np.mean(speaking.speaker[heard] == person))
        rows, cols = linear_sum_assignment(-share) if share.size else ([], [])
        chosen = {int(r): int(c) for r, c in zip(rows, cols, strict=True)
                  if share[r, c] >= MIN_SHARE}
        for p, person in enumerate(persons):
            c = chosen.get(p)
            roles[int(person)] = Role(int(person), int(shot),
                                      names[c] if c is not None else None,
                                      float(share[p, c]) if c is not None else 0.0)
    return [roles[p] for p in range(people.count)]
