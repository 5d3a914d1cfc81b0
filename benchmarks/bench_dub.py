"""Speed and memory of one dub on a generated 720p25 talking clip (figures printed, never
asserted). Each measurement runs in a fresh process so its peak RSS is its own.

    .venv/bin/python benchmarks/bench_dub.py --engine warp --seconds 20 --longer 10
    .venv/bin/python benchmarks/bench_dub.py --engine wav2lip --seconds 20 --longer 10
    .venv/bin/python benchmarks/bench_dub.py --seconds 20 --longer 1 --qc   # QC's cost
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def make_inputs(folder: Path, seconds: float) -> tuple[Path, Path]:
    from lipdub.samples.speech import SpeechSpec, speech_like, write_wav
    from lipdub.samples.talking import ClipSpec, write_talking_clip

    video = folder / f"clip_{seconds:g}s.mp4"
    audio = folder / f"voice_{seconds:g}s.wav"
    if not video.exists():
        original = speech_like(SpeechSpec(seconds=seconds, seed=1))
        write_talking_clip(video, ClipSpec(width=1280, height=720), original)
        write_wav(str(audio), speech_like(SpeechSpec(seconds=seconds, seed=7, pitch_hz=120)))
    return video, audio


def process_age_s() -> float:
    """Seconds since this process started (interpreter start-up and imports included)."""
    ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    return uptime - ticks / os.sysconf("SC_CLK_TCK")


class FirstFrame:
    """A ProgressSink that notes when the first frame was analysed."""

    def __init__(self) -> None:
        self.seconds: float | None = None

    def start(self, stage: str, total: int) -> None: ...

    def advance(self, stage: str, amount: int = 1) -> None:
        if self.seconds is None:
            self.seconds = process_age_s()

    def finish(self, stage: str) -> None: ...


def child(video: Path, audio: Path, engine_name: str, checkpoint: str | None,
          cpu_runtime: str, qc: bool = False) -> None:
    """Runs inside the measured process: what `lipdub dub` does (its imports, the input
    check before any model loads, the engine, the dub), then its figures as JSON."""
    import lipdub.cli  # noqa: F401 - the command line's own import cost
    from lipdub.media.checks import check_dub_files

    with tempfile.TemporaryDirectory() as tmp:
        output = Path(tmp) / "out.mp4"
        check_dub_files(video, audio, output)
        from lipdub.engines.registry import build_engine
        from lipdub.pipeline import dub

        engine = build_engine(engine_name, Path(checkpoint) if checkpoint else None,
                              cpu_runtime=cpu_runtime)
        first = FirstFrame()
        from lipdub.qc.thresholds import QCThresholds

        report = dub(video, audio, output, engine, progress=first,
                     qc=QCThresholds() if qc else None)
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the parent.
    peak_kib = next(int(line.split()[1])
                    for line in Path("/proc/self/status").read_text().splitlines()
                    if line.startswith("VmHWM"))
    print(json.dumps({
        "frames": report.output_frames,
        "seconds": report.seconds_total,
        "first_frame_s": first.seconds,
        "stages": {k: {"seconds": v.seconds, "frames": v.frames}
                   for k, v in report.stages.items()},
        "peak_rss_mib": peak_kib / 1024,
    }))


def measure(video: Path, audio: Path, engine: str, checkpoint: str | None,
            cpu_runtime: str = "auto", qc: bool = False) -> dict:
    cmd = [sys.executable, __file__, "--child", str(video), str(audio), "--engine", engine,
           "--cpu-runtime", cpu_runtime, *(["--qc"] if qc else [])]
    if checkpoint:
        cmd += ["--checkpoint", checkpoint]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def random_checkpoint(folder: Path) -> Path:
    """Wav2Lip with random weights: the released network's compute, none of its weights."""
    import torch

    from lipdub.models.wav2lip import Wav2Lip, save_wav2lip_checkpoint

    path = folder / "wav2lip_random.pth"
    if not path.exists():
        torch.manual_seed(0)
        save_wav2lip_checkpoint(Wav2Lip(), path)
    return path


def show(label: str, result: dict) -> None:
    print(f"\n{label}: {result['frames']} frames in {result['seconds']:.1f} s = "
          f"{result['frames'] / result['seconds']:.1f} frames/s end to end, "
          f"peak RSS {result['peak_rss_mib']:.0f} MiB, first frame analysed "
          f"{result['first_frame_s']:.2f} s after the process started")
    for name, stage in result["stages"].items():
        fps = stage["frames"] / stage["seconds"] if stage["frames"] and stage["seconds"] else 0
        print(f"  {name:<10} {stage['seconds']:7.2f} s  " + (f"{fps:7.1f} frames/s" if fps
                                                           else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--engine", default="warp", choices=["warp", "wav2lip"])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--longer", type=float, default=10.0,
                        help="also run a clip this many times longer (memory must stay flat)")
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--cpu-runtime", default="auto",
                        help="auto | torch | torch-bf16 | onnxruntime (wav2lip on CPU)")
    parser.add_argument("--work", type=Path, default=Path("out/bench"))
    parser.add_argument("--qc", action="store_true",
                        help="each clip dubbed twice, without and with the QC pass")
    parser.add_argument("--child", nargs=2, type=Path)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.engine, args.checkpoint, args.cpu_runtime,
              args.qc)
        return

    args.work.mkdir(parents=True, exist_ok=True)
    checkpoint = args.checkpoint
    if args.engine == "wav2lip" and checkpoint is None:
        checkpoint = str(random_checkpoint(args.work))
        print("wav2lip with random weights (same compute as the released ones)")
    print(f"machine: {platform.processor() or platform.machine()}, "
          f"{len(__import__('os').sched_getaffinity(0))} cores, python {platform.python_version()}")
    lengths = [args.seconds] + ([args.seconds * args.longer] if args.longer > 1 else [])
    results = []
    for seconds in lengths:
        started = time.perf_counter()
        video, audio = make_inputs(args.work, seconds)
        print(f"\ninput {video.name}: 1280x720 @ 25 fps, {seconds:g} s "
              f"(made in {time.perf_counter() - started:.0f} s)")
        results.append(measure(video, audio, args.engine, checkpoint, args.cpu_runtime))
        show(f"{args.engine}, {seconds:g} s clip", results[-1])
        if args.qc:
            checked = measure(video, audio, args.engine, checkpoint, args.cpu_runtime, True)
            show(f"{args.engine}, {seconds:g} s clip, with QC", checked)
            plain, with_qc = (r["frames"] / r["seconds"] for r in (results[-1], checked))
            print(f"QC: {plain:.1f} -> {with_qc:.1f} frames/s end to end "
                  f"(+{checked['seconds'] - results[-1]['seconds']:.1f} s)")
    if len(results) == 2:
        a, b = results
        print(f"\npeak RSS {a['peak_rss_mib']:.0f} MiB at {lengths[0]:g} s vs "
              f"{b['peak_rss_mib']:.0f} MiB at {lengths[1]:g} s "
              f"(ratio {b['peak_rss_mib'] / a['peak_rss_mib']:.2f} for "
              f"{lengths[1] / lengths[0]:g}x the frames)")


if __name__ == "__main__":
    main()
