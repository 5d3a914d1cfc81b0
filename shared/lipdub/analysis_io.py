"""The analysis pass's result as a versioned file, the form in which it passes between the
stages of a job (and so between workers, which during a rolling upgrade run two releases):
numpy arrays in an .npz with a JSON header, read with allow_pickle=False. A reader takes
every version up to its own and refuses newer ones with a clear error."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lipdub.errors import LipDubError
from lipdub.faces.people import People
from lipdub.faces.track import FaceTrack
from lipdub.pipeline import Analysis
from lipdub.scene import Scene

FORMAT = "lipdub.analysis"
VERSION = 1
_STUDY = "study."


class AnalysisFormatError(LipDubError):
    code = "analysis_format"


def save_analysis(analysis: Analysis, path: Path) -> None:
    study = analysis.study
    if study is not None and not isinstance(study, dict):
        raise TypeError("an engine's study state must be a dict of arrays and numbers")
    header = {"format": FORMAT, "version": VERSION,
              "frame_size": list(analysis.track.frame_size),
              "study": None if study is None else sorted(study)}
    arrays = {"header": np.array(json.dumps(header)), "boxes": analysis.track.boxes,
              "shot": analysis.track.shot}
    arrays.update({_STUDY + k: np.asarray(v) for k, v in (study or {}).items()})
    with path.open("wb") as out:
        np.savez(out, **arrays)


def load_analysis(path: Path) -> Analysis:
    try:
        with np.load(path, allow_pickle=False) as archive:
            header = json.loads(str(archive["header"]))
            _check_header(header, FORMAT, path)
            track = FaceTrack(boxes=archive["boxes"], shot=archive["shot"],
                              frame_size=tuple(header["frame_size"]))
            study = None if header["study"] is None else {
                k: _plain(archive[_STUDY + k]) for k in header["study"]}
    except (OSError, ValueError, KeyError) as exc:
        raise AnalysisFormatError(f"The analysis file is unreadable: {exc}.",
                                  "Run the job again.") from exc
    return Analysis(track=track, study=study)


def _check_header(header: dict, expected: str, path: Path) -> None:
    if header.get("format") != expected:
        raise AnalysisFormatError(f"'{path.name}' is not an analysis file.",
                                  "Run the job again.")
    if header["version"] > VERSION:
        raise AnalysisFormatError(
            f"The analysis was written by a newer release (format version "
            f"{header['version']}; this worker reads up to {VERSION}).",
            "Finish the rolling upgrade: the job resumes on an upgraded worker.")


def _plain(value: np.ndarray) -> np.ndarray | float:
    return float(value) if value.ndim == 0 else value


SCENE_FORMAT = "lipdub.scene"


def save_scene(scene: Scene, path: Path) -> None:
    """A cast's analysis (lipdub.scene), kept so that a corrected cast re-uses it."""
    header = {"format": SCENE_FORMAT, "version": VERSION, "fps": scene.fps,
              "frame_size": list(scene.people.frame_size),
              "sound": scene.level_db is not None}
    arrays = {"header": np.array(json.dumps(header)), "boxes": scene.people.boxes,
              "shot_of_person": scene.people.shot_of_person, "shot": scene.people.shot,
              "openness": scene.openness}
    if scene.level_db is not None:
        arrays["level_db"] = scene.level_db
    with path.open("wb") as out:
        np.savez(out, **arrays)


def load_scene(path: Path) -> Scene:
    try:
        with np.load(path, allow_pickle=False) as archive:
            header = json.loads(str(archive["header"]))
            _check_header(header, SCENE_FORMAT, path)
            people = People(archive["boxes"], archive["shot_of_person"], archive["shot"],
                            tuple(header["frame_size"]))
            level = archive["level_db"] if header["sound"] else None
            return Scene(people, archive["openness"], level, float(header["fps"]))
    except (OSError, ValueError, KeyError) as exc:
        raise AnalysisFormatError(f"The scene analysis is unreadable: {exc}.",
                                  "Run the job again.") from exc
