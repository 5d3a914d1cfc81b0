"""What casting costs (figures printed, never asserted): on a generated two-person
dialogue, frames/s of the one-person analysis pass (the dub's) against the casting
analysis (everyone tracked, then each face's lips measured for active-speaker detection).

    .venv/bin/python benchmarks/bench_casting.py --seconds 300
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from lipdub.audio.samples import decoded_samples
from lipdub.engines.warp.engine import WarpEngine
from lipdub.faces.people import track_people
from lipdub.faces.speaking import loudness, mouth_openness, who_speaks
from lipdub.media.decode import iter_frames
from lipdub.media.probe import probe_video
from lipdub.pipeline import analyse_video
from lipdub.samples.dialogue import DialogueSpec, write_dialogue


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--work", type=Path, default=Path("out/bench"))
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    turns = DialogueSpec().turn_seconds
    repeats = int(np.ceil(args.seconds / sum(turns)))
    spec = DialogueSpec(turn_seconds=turns * repeats,
                        cuts=tuple(float(t) for t in np.arange(30.0, args.seconds, 30.0)))
    started = time.perf_counter()
    clip = write_dialogue(args.work / f"dialogue-{args.seconds:.0f}s.mp4", spec).path
    info = probe_video(clip)
    print(f"{info.frame_count} frames {info.width}x{info.height}, two people, a cut every "
          f"30 s (made in {time.perf_counter() - started:.0f} s)")

    started = time.perf_counter()
    analyse_video(clip, WarpEngine())
    one = time.perf_counter() - started
    print(f"one-person analysis (the dub's, warp engine): {one:6.1f} s "
          f"{info.frame_count / one:6.1f} frames/s")

    started = time.perf_counter()
    people = track_people(iter_frames(info), info.frame_count)
    tracked = time.perf_counter() - started
    openness = mouth_openness(iter_frames(info), people)
    with decoded_samples(clip) as samples:
        speaking = who_speaks(openness, loudness(samples, float(info.fps), info.frame_count),
                              float(info.fps))
    total = time.perf_counter() - started
    print(f"casting analysis: everyone tracked {tracked:6.1f} s "
          f"({info.frame_count / tracked:6.1f} frames/s), with active-speaker detection "
          f"{total:6.1f} s ({info.frame_count / total:6.1f} frames/s); "
          f"{people.count} faces, speaker found on {np.mean(speaking.speaker >= 0):.0%} "
          "of frames")


if __name__ == "__main__":
    main()
