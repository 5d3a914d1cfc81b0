"""The analysis a cast needs, done once per video: everyone on screen through each shot, how
each of their mouths opens, and how loud the video's own sound is on every frame. It does
not depend on the characters or their lines, so an editor's corrected cast re-uses it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lipdub.audio.samples import decoded_samples
from lipdub.faces.people import People, track_people
from lipdub.faces.speaking import Speaking, loudness, mouth_openness, who_speaks
from lipdub.media.decode import iter_frames
from lipdub.media.probe import VideoInfo
from lipdub.progress import MOUTHS, NullProgress, ProgressSink
from lipdub.threads import pipeline_threads


@dataclass
class Scene:
    people: People
    openness: np.ndarray  # (people, frames) inner-lip opening (faces.speaking)
    level_db: np.ndarray | None  # (frames,) the video's own sound; None: it has none
    fps: float

    def speaking(self) -> Speaking:
        """Who speaks on each frame (nobody, when the video has no sound to tell by)."""
        level = self.level_db if self.level_db is not None \
            else np.full(len(self.people.shot), -120.0, np.float32)
        return who_speaks(self.openness, level, self.fps)


def analyse_scene(info: VideoInfo, detect_every: int = 5,
                  progress: ProgressSink | None = None) -> Scene:
    """Two streaming passes, each its own progress phase (so each frame counts once in
    each): the people (detections linked through each shot), then their mouths (their
    boxes are only known once the first pass has seen the whole shot)."""
    progress = progress or NullProgress()
    count = info.frame_count
    progress.start("faces", count)
    with pipeline_threads():
        people = track_people(iter_frames(info), count, detect_every,
                              on_frame=lambda i, rgb: progress.advance("faces"))
        progress.finish("faces")
        progress.start(MOUTHS, count)
        openness = mouth_openness(_counted(iter_frames(info), progress), people)
    level = None
    if info.has_audio:
        with decoded_samples(info.path) as samples:
            level = loudness(samples, float(info.fps), len(people.shot)).astype(np.float32)
    progress.finish(MOUTHS)
    return Scene(people, openness, level, float(info.fps))


def _counted(frames, progress: ProgressSink):  # noqa: ANN001, ANN202 - frame iterators
    for rgb in frames:
        progress.advance(MOUTHS)
        yield rgb
