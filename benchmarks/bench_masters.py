"""Masters in, masters out: what a 10-bit ProRes 422 HQ dub costs against today's H.264
path on the same picture (figures printed, never asserted). Each dub runs in a fresh
process, warp engine, per-stage frames/s and peak RSS:

  h264 -> delivery    the talking clip as 8-bit H.264, dubbed to an H.264 MP4
  prores -> match     the same picture as ProRes 422 HQ 10-bit 4:2:2, dubbed to a ProRes
                      master (planes at 10 bits, audio streams copied)

    .venv/bin/python -m benchmarks.bench_masters                 # 1080p, 10 s
    .venv/bin/python -m benchmarks.bench_masters --height 2160   # UHD, 10 s
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import ffmpeg
import imageio_ffmpeg

from benchmarks.bench_dub import FirstFrame, show


def make_clips(folder: Path, seconds: float, height: int) -> tuple[Path, Path, Path]:
    """(H.264 clip, ProRes master of the same picture, the new voice)."""
    from lipdub.samples.speech import SpeechSpec, speech_like, write_wav
    from lipdub.samples.talking import ClipSpec, write_talking_clip

    width = height * 16 // 9
    h264 = folder / f"talking_{height}p_{seconds:g}s.mp4"
    master = folder / f"talking_{height}p_{seconds:g}s.mov"
    voice = folder / f"voice_{seconds:g}s.wav"
    if not h264.exists():
        write_talking_clip(h264, ClipSpec(width=width, height=height),
                           speech_like(SpeechSpec(seconds=seconds, seed=1)))
        write_wav(str(voice), speech_like(SpeechSpec(seconds=seconds, seed=7, pitch_hz=120)))
    if not master.exists():
        clip = ffmpeg.input(str(h264))
        ffmpeg.output(clip.video, clip.audio, str(master), vcodec="prores_ks",
                      pix_fmt="yuv422p10le", acodec="pcm_s24le", ar=48_000,
                      timecode="01:00:00:00", **{"profile:v": 3}).run(
            cmd=imageio_ffmpeg.get_ffmpeg_exe(), overwrite_output=True, quiet=True)
    return h264, master, voice


def child(video: Path, audio: Path, profile: str) -> None:
    """In the measured process: the dub, as `lipdub dub --output-profile PROFILE`."""
    from lipdub.engines.registry import build_engine
    from lipdub.media.master import Dialogue
    from lipdub.output_profiles import OutputProfile
    from lipdub.outputs import plan_output
    from lipdub.pipeline import dub
    from lipdub.sync import SyncMode

    with tempfile.TemporaryDirectory() as tmp:
        out, sync = None, SyncMode.CUT_OFF
        output = Path(tmp) / ("out.mp4" if profile == "delivery" else "out.mov")
        if profile != "delivery":
            out, sync = plan_output(OutputProfile(profile), video, output, sync,
                                    Dialogue(replace=0), restoring=False)
        first = FirstFrame()
        report = dub(video, audio, output, build_engine("warp", None), sync,
                     progress=first, out=out)
    peak_kib = next(int(line.split()[1])
                    for line in Path("/proc/self/status").read_text().splitlines()
                    if line.startswith("VmHWM"))
    print(json.dumps({"frames": report.output_frames, "seconds": report.seconds_total,
                      "first_frame_s": first.seconds, "peak_rss_mib": peak_kib / 1024,
                      "stages": {k: {"seconds": v.seconds, "frames": v.frames}
                                 for k, v in report.stages.items()}}))


def measure(video: Path, audio: Path, profile: str) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.bench_masters", "--child", str(video),
           str(audio), profile]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--work", type=Path, default=Path("out/bench"))
    parser.add_argument("--child", nargs=3)
    args = parser.parse_args()
    if args.child:
        child(Path(args.child[0]), Path(args.child[1]), args.child[2])
        return
    args.work.mkdir(parents=True, exist_ok=True)
    h264, master, voice = make_clips(args.work, args.seconds, args.height)
    print(f"{args.height}p, {args.seconds:g} s; warp engine; each dub in a fresh process")
    show("h264 -> delivery (8-bit 4:2:0 H.264)", measure(h264, voice, "delivery"))
    show("prores -> match (10-bit 4:2:2 ProRes 422 HQ)", measure(master, voice, "match"))


if __name__ == "__main__":
    main()
