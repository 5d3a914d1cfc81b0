"""What the lip-sync engines do to a face's detail, by frequency band, next to what the
restorer's training degradation does (printed, never asserted). The training degradation
should lose what the engines lose: a restorer trained on another loss learns a repair that
is not needed, or misses the one that is.

Per band (lipdub.restore.bands), the detail an output keeps, as the ratio of its band
energy to the source face's over the lower face (1.0 = all of it), for:
  warp        the warp engine run on the footage with the new voice (the real thing)
  96px        the lower face through 96 x 96 and back: Wav2Lip generates at 96 px, so this
              is the most detail its output can hold (its released weights are not ours to
              run here; a trained generator's output is blurrier still)
  train:P     lipdub.restore.degrade's profile P on the same crops

    .venv/bin/python benchmarks/bench_degradation.py VIDEO AUDIO [--frames 120]
"""

from __future__ import annotations

import argparse
from contextlib import closing
from pathlib import Path

import cv2
import numpy as np

from lipdub.audio.samples import decoded_samples
from lipdub.composite import composite
from lipdub.engines.base import FaceCrop
from lipdub.engines.warp.engine import WarpEngine
from lipdub.faces.crop import crop_box
from lipdub.media.decode import iter_frames
from lipdub.media.probe import probe_video
from lipdub.pipeline import analyse_video
from lipdub.restore.bands import BAND_NAMES, band_energies
from lipdub.restore.crops import working_resolution
from lipdub.restore.degrade import ENGINE_SIZE, PROFILES, degrade, lower_face_mask


def engine_pairs(video: Path, audio: Path, limit: int) -> tuple[list, list]:
    """(source crop, warp-engine crop) pairs of the face frames, at the restorer's size."""
    info = probe_video(video)
    with closing(WarpEngine()) as engine:
        analysis = analyse_video(video, engine)
    track = analysis.track
    sides = track.boxes[track.has_face, 3] - track.boxes[track.has_face, 1]
    size = working_resolution(float(np.median(sides)))
    sources, outputs = [], []
    with decoded_samples(audio) as samples, closing(WarpEngine()) as engine:
        engine.load_study_state(analysis.study)
        engine.prepare(samples, float(info.fps))
        audio_frames = int(len(samples) / 16_000 * float(info.fps))
        previous = -2
        for k, frame in zip(range(min(info.frame_count, audio_frames)), iter_frames(info),
                            strict=False):
            box = None if np.isnan(track.boxes[k][0]) else crop_box(track.boxes[k],
                                                                     frame.shape[:2])
            if box is None:
                continue
            crop = FaceCrop(k, frame, box, bool(track.shot_starts[k]) or k != previous + 1)
            previous = k
            dubbed = composite(frame, engine.render([crop])[0])
            x0, y0, x1, y1 = box
            for target, image in ((sources, frame), (outputs, dubbed)):
                target.append(cv2.resize(image[y0:y1, x0:x1], (size, size),
                                         interpolation=cv2.INTER_AREA))
            if len(sources) >= limit:
                break
    return sources, outputs


def round_trip_96(crop: np.ndarray) -> np.ndarray:
    size = crop.shape[0]
    small = cv2.resize(crop, (ENGINE_SIZE, ENGINE_SIZE), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC)


def kept(sources: list[np.ndarray], outputs: list[np.ndarray]) -> np.ndarray:
    weight = lower_face_mask(sources[0].shape[0])
    source = np.mean([band_energies(s, weight) for s in sources], axis=0)
    output = np.mean([band_energies(o, weight) for o in outputs], axis=0)
    return output / source


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("video", type=Path)
    parser.add_argument("audio", type=Path)
    parser.add_argument("--frames", type=int, default=120)
    args = parser.parse_args()
    sources, warped = engine_pairs(args.video, args.audio, args.frames)
    rng = np.random.default_rng(0)
    rows = {"warp": kept(sources, warped),
            "96px": kept(sources, [round_trip_96(s) for s in sources])}
    for profile in PROFILES:
        rows[f"train:{profile}"] = kept(sources, [degrade(s, rng, profile) for s in sources])
    print(f"{len(sources)} face crops at {sources[0].shape[0]} px from {args.video.name}; "
          "detail kept per band (output / source band energy, lower face):")
    print(f"  {'':14s}" + "".join(f"{name:>10s}" for name in BAND_NAMES))
    for label, ratios in rows.items():
        print(f"  {label:14s}" + "".join(f"{r:10.3f}" for r in ratios))


if __name__ == "__main__":
    main()
