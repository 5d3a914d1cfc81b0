"""The embedded default's CPU speed against the reference Wav2Lip script (figures printed,
never asserted). On one clip, each run in a fresh process:

  reference      benchmarks/reference_wav2lip.py with a fixed box (no face detection),
                 random weights: process wall time, imports included
  lipdub dub     the command line, wav2lip on each CPU runtime and warp: process wall time
  stages         the same dubs' per-stage frames/s, peak RSS, and when the first frame was
                 analysed (seconds after the process started)

    .venv/bin/python -m benchmarks.bench_cpu                       # generated 720p, 20 s
    .venv/bin/python -m benchmarks.bench_cpu --clip C.mp4 --audio A.wav
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.bench_dub import make_inputs, measure, random_checkpoint, show

RUNTIMES = ("auto", "torch", "onnxruntime")
ROOT = Path(__file__).resolve().parent.parent


def fixed_box(video: Path) -> str:
    """The box a user of the reference would give: the median of LipDub's padded crops."""
    from lipdub.engines.warp.engine import WarpEngine
    from lipdub.faces.crop import crop_box
    from lipdub.pipeline import analyse_video

    track = analyse_video(video, WarpEngine()).track
    boxes = [crop_box(b, track.frame_size) for b in track.boxes if not np.isnan(b[0])]
    return ",".join(str(int(v)) for v in np.median(np.array(boxes), axis=0))


def wall(cmd: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clip", type=Path)
    parser.add_argument("--audio", type=Path)
    parser.add_argument("--work", type=Path, default=Path("out/bench"))
    parser.add_argument("--repeat", type=int, default=2, help="wall-time runs of each")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    video, audio = ((args.clip, args.audio) if args.clip
                    else make_inputs(args.work, 20.0))
    checkpoint = random_checkpoint(args.work)
    print(f"machine: {platform.machine()}, {len(os.sched_getaffinity(0))} cores; "
          f"clip {video.name}; wav2lip with random weights")
    from lipdub.config import get_settings
    from lipdub.inference.onnx_local import OnnxPredictor

    # The ONNX export is made once per checkpoint (where the command line keeps it).
    OnnxPredictor(checkpoint, get_settings().model_cache_dir)
    box = fixed_box(video)
    out = args.work / "bench_cpu_out.mp4"
    # Without the QC pass the command line runs after a dub (the reference has none; its
    # own cost: bench_dub.py --qc).
    lipdub = [str(Path(sys.executable).with_name("lipdub")), "dub", "--video", str(video),
              "--audio", str(audio), "--output", str(out), "--no-qc"]
    runs = {"reference (box given)": [sys.executable, "benchmarks/reference_wav2lip.py",
                                      str(video), str(audio), str(checkpoint), str(out),
                                      "--box", box]}
    for runtime in RUNTIMES:
        runs[f"lipdub wav2lip {runtime}"] = [*lipdub, "--engine", "wav2lip",
                                             "--wav2lip-checkpoint", str(checkpoint),
                                             "--cpu-runtime", runtime]
    runs["lipdub warp"] = [*lipdub, "--engine", "warp"]
    times = {name: [wall(cmd) for _ in range(args.repeat)] for name, cmd in runs.items()}
    reference = min(times["reference (box given)"])
    print(f"\nprocess wall time, best of {args.repeat} (all runs):")
    for name, seconds in times.items():
        print(f"  {name:<26} {min(seconds):6.1f} s  {reference / min(seconds):5.2f}x the "
              f"reference  ({', '.join(f'{s:.1f}' for s in seconds)})")
    for runtime in RUNTIMES:
        show(f"stages, wav2lip {runtime}",
             measure(video, audio, "wav2lip", str(checkpoint), runtime))
    show("stages, warp", measure(video, audio, "warp", None))


if __name__ == "__main__":
    main()
