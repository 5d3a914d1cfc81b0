"""Who is speaking, frame by frame, with no model beyond the face models in the wheel: a
speaker's lips open and close with the loudness of their own speech, a listener's do not.
For each person on screen, the inner-lip opening (Face Mesh, per face) is correlated with
the original sound track's speech envelope over a short window around each frame; the
speaker is the face that follows the sound clearly better than every other face."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import binary_closing

from lipdub.audio.load import FEATURE_RATE
from lipdub.audio.samples import Samples
from lipdub.engines.warp.landmarks import LandmarkTracker
from lipdub.faces.people import People

WINDOW_S = 0.6  # the correlation window: shorter than a line, longer than a syllable
SPEECH_DB = -30.0  # frames this far below the track's loud frames count as silence
HANGOVER_S = 0.12
MIN_SCORE = 0.25  # a face must follow the sound at least this well to be the speaker


@dataclass
class Speaking:
    openness: np.ndarray  # (people, frames): inner-lip gap over eye distance; NaN unmeasured
    score: np.ndarray  # (people, frames): correlation of opening and loudness around it
    speech: np.ndarray  # (frames,) bool: the sound track has speech here
    speaker: np.ndarray  # (frames,) int: the speaking person, -1 for none (or silence)
    confidence: np.ndarray  # (frames,) the speaker's score lead over the next face, 0..2


def loudness(samples: Samples, fps: float, frame_count: int) -> np.ndarray:
    """Each frame's loudness (dB of its RMS, relative to the track's loud frames)."""
    edges = np.round(np.arange(frame_count + 1) / fps * FEATURE_RATE).astype(int)
    audio = samples[0:int(edges[-1])]
    rms = np.array([np.sqrt(np.mean(np.square(audio[a:b]))) if b > a and a < len(audio)
                    else 0.0 for a, b in zip(edges, edges[1:], strict=False)])
    loud = np.percentile(rms, 95) if np.any(rms > 0) else 1.0
    return 20 * np.log10(np.maximum(rms, 1e-6) / max(loud, 1e-6))


def speech_frames(level_db: np.ndarray, fps: float) -> np.ndarray:
    """Frames with speech: loud enough, with a line's short pauses (between syllables,
    under a quarter second) bridged."""
    bridge = max(1, round(HANGOVER_S * fps))
    return binary_closing(np.pad(level_db > SPEECH_DB, bridge),
                          np.ones(2 * bridge + 1, bool))[bridge:-bridge]


def mouth_openness(frames: Iterable[np.ndarray], people: People) -> np.ndarray:
    """Each person's inner-lip opening on every frame they are on screen (a second pass:
    the boxes are only known once the first has seen the whole shot)."""
    openness = np.full(people.boxes.shape[:2], np.nan, np.float32)
    trackers: dict[int, LandmarkTracker] = {}
    try:
        for i, rgb in enumerate(frames):
            if i >= openness.shape[1]:
                break
            for person in np.flatnonzero(~np.isnan(people.boxes[:, i, 0])):
                tracker = trackers.get(int(person))
                if tracker is None:
                    tracker = trackers[int(person)] = LandmarkTracker()
                box = tuple(int(v) for v in people.boxes[person, i])
                shape = tracker.measure(rgb, box)
                if shape is not None:
                    openness[person, i] = shape.lip_gap() / max(shape.eye_distance, 1e-6)
            for person in [p for p in trackers if np.isnan(people.boxes[p, i, 0])]:
                trackers.pop(person).close()  # their shot is over
    finally:
        for tracker in trackers.values():
            tracker.close()
    return openness


def _windowed_correlation(x: np.ndarray, y: np.ndarray, half: int) -> np.ndarray:
    """Pearson correlation of x and y over [i - half, i + half] for every i, using only
    frames where x is known; 0 where x barely moves (a still mouth follows nothing)."""
    out = np.zeros(len(x), np.float32)
    for i in range(len(x)):
        window = slice(max(0, i - half), min(len(x), i + half + 1))
        a, b = x[window], y[window]
        known = ~np.isnan(a)
        if known.sum() < max(4, half):
            continue
        a, b = a[known], b[known]
        if a.std() < 0.01 or b.std() < 1e-6:
            continue
        out[i] = float(np.corrcoef(a, b)[0, 1])
    return out


def who_speaks(openness: np.ndarray, level_db: np.ndarray, fps: float) -> Speaking:
    half = max(2, round(WINDOW_S * fps / 2))
    # Loudness on a speech-like scale: silence floors at the threshold.
    envelope = np.maximum(level_db, SPEECH_DB)
    score = np.stack([_windowed_correlation(o, envelope, half) for o in openness]) \
        if len(openness) else np.zeros((0, len(level_db)), np.float32)
    speech = speech_frames(level_db, fps)
    speaker = np.full(len(level_db), -1, np.int32)
    confidence = np.zeros(len(level_db), np.float32)
    if len(openness):
        ranked = np.sort(score, axis=0)
        best = ranked[-1]
        runner_up = ranked[-2] if len(openness) > 1 else np.zeros_like(best)
        chosen = speech & (best >= MIN_SCORE)
        speaker[chosen] = np.argmax(score, axis=0)[chosen]
        confidence[chosen] = (best - runner_up)[chosen]
    return Speaking(openness, score, speech, speaker, confidence)
