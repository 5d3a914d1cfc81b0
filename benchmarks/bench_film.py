"""Film scale, printed (never asserted):

  rss      a worker's peak RSS dubbing a generated film in segments, for two film lengths
           (flat memory: the analysis is 24 bytes a frame, every segment the same size)
  workers  wall time of a generated film dubbed as one segmented job by 1 and then 2
           Celery worker processes (the fan-out's scaling), and the join's own time per
           film minute (needs Redis on 127.0.0.1:6379; uses database 11)

    .venv/bin/python benchmarks/bench_film.py rss --seconds 60,300 --height 1080
    .venv/bin/python benchmarks/bench_film.py workers --seconds 300 --height 720
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import imageio_ffmpeg
import numpy as np

from lipdub.samples.speech import SpeechSpec, speech_like, write_wav
from lipdub.samples.talking import ClipSpec, Shot, write_multishot_clip
from lipdub.segments import DEFAULT_SEGMENT_SECONDS

TINTS = [(1.0, 1.0, 1.0), (1.1, 0.95, 0.9), (0.9, 1.0, 1.1), (1.05, 1.05, 0.9)]


TILE_SECONDS = 60.0  # longer films repeat a generated minute (see make_film)


def make_film(folder: Path, seconds: float, height: int) -> tuple[Path, Path]:
    """A film of 8-second shots (every fifth without a face) and a new voice track. Past a
    minute, the picture is one generated minute repeated by stream copy (its cuts are shot
    boundaries like any other), so that a 30-minute 1080p film takes seconds to make, not
    an hour of face rendering; the voice is generated whole."""
    width = height * 16 // 9
    voice = folder / f"voice-{seconds:.0f}s.wav"
    film = folder / f"film-{seconds:.0f}s-{height}p.mp4"
    if film.exists() and voice.exists():  # made for an earlier length of this run
        return film, voice
    write_wav(str(voice), speech_like(SpeechSpec(seconds=seconds, seed=8)))
    if seconds > TILE_SECONDS:
        minute, _ = make_film(folder, TILE_SECONDS, height)
        repeats = int(np.ceil(seconds / TILE_SECONDS))
        listing = folder / "tiles.txt"
        listing.write_text(f"file '{minute.resolve()}'\n" * repeats)
        subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-f", "concat",
                        "-safe", "0", "-i", str(listing), "-t", f"{seconds}", "-c", "copy",
                        str(film)], check=True)
        return film, voice
    shots = []
    for n in range(int(np.ceil(seconds / 8))):
        spec = ClipSpec(width=width, height=height, face_height=height * 13 // 36,
                        no_face=n % 5 == 4)
        shots.append(Shot(spec, min(8.0, seconds - 8 * n), TINTS[n % len(TINTS)]))
    write_multishot_clip(film, shots, speech_like(SpeechSpec(seconds=seconds, seed=7)))
    return film, voice


CHILD = """
import sys, time
from pathlib import Path
from lipdub.memory import limit_malloc_arenas
limit_malloc_arenas()  # as a worker process does
from lipdub.engines.warp.engine import WarpEngine
from lipdub.segments import dub_in_segments
folder = Path(sys.argv[3])
started = time.perf_counter()
segments = dub_in_segments(Path(sys.argv[1]), Path(sys.argv[2]), folder / "out.mp4",
                           WarpEngine, folder)
seconds = time.perf_counter() - started
peak = next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]
print(len(segments), seconds, int(peak) / 1024)
"""


def bench_rss(lengths: list[float], height: int) -> None:
    print(f"peak RSS of one process dubbing a {height}p film in segments of "
          f"{DEFAULT_SEGMENT_SECONDS:.0f} s (warp engine):")
    with tempfile.TemporaryDirectory(prefix="lipdub-film-") as tmp:
        for seconds in lengths:
            started = time.perf_counter()
            film, voice = make_film(Path(tmp), seconds, height)
            made = time.perf_counter() - started
            work = Path(tmp) / f"work-{seconds:.0f}"
            work.mkdir()
            answer = subprocess.run([sys.executable, "-c", CHILD, str(film), str(voice),
                                     str(work)], capture_output=True, text=True, check=True)
            count, wall, peak = answer.stdout.split()[-3:]
            print(f"  {seconds / 60:5.1f} min: {int(count):3d} segments, peak RSS "
                  f"{float(peak):7.1f} MiB, {float(wall):7.1f} s "
                  f"({seconds * 25 / float(wall):.1f} frames/s; film made in {made:.0f} s)",
                  flush=True)


def bench_workers(seconds: float, height: int, counts: list[int]) -> None:
    import redis
    from fastapi.testclient import TestClient

    from lipdub.config import Settings
    from lipdub.db.models import Job
    from lipdub.db.session import session_factory, upgrade
    from lipdub.jobs.keys import create_key
    from lipdub_gateway.app import create_app

    broker = "redis://127.0.0.1:6379/11"
    with tempfile.TemporaryDirectory(prefix="lipdub-film-") as tmp_name:
        tmp = Path(tmp_name)
        film, voice = make_film(tmp, seconds, height)
        print(f"a {seconds / 60:.1f} min {height}p film as one job in "
              f"{Settings().segment_seconds:.0f} s segments (LIPDUB_SEGMENT_SECONDS):")
        for workers in counts:
            redis.Redis.from_url(broker).flushdb()
            url = f"sqlite:///{tmp / f'db-{workers}.sqlite'}"
            upgrade(url)
            env = {**os.environ, "LIPDUB_DATABASE_URL": url, "LIPDUB_EXECUTOR": "celery",
                   "LIPDUB_BROKER_URL": broker, "LIPDUB_STORAGE_DIR": str(tmp / "store"),
                   "LIPDUB_ALLOW_HTTP_URLS": "true", "TMPDIR": tmp_name}
            sessions = session_factory(url)
            with sessions() as session:
                _, key = create_key(session, "bench")
            processes = [subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "lipdub_worker.tasks", "worker",
                 "--pool", "solo", "--without-gossip", "--without-mingle", "--loglevel",
                 "WARNING", "-n", f"bench{n}@%h"], env=env, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL) for n in range(workers)]
            settings = Settings(database_url=url, executor="celery", broker_url=broker,
                                storage_dir=tmp / "store")
            auth = {"Authorization": f"Bearer {key}"}
            try:
                with TestClient(create_app(settings, run_jobs=False)) as client:
                    ids = []
                    for path in (film, voice):
                        with path.open("rb") as f:
                            ids.append(client.post("/v1/uploads", headers=auth, files={
                                "file": (path.name, f)}).json()["id"])
                    started = time.perf_counter()  # the job is enqueued as it is accepted
                    job_id = client.post("/v1/jobs", headers=auth, json={
                        "video": ids[0], "audio": ids[1],
                        "options": {"engine": "warp", "sync_mode": "silence"}}).json()["id"]
                while True:
                    with sessions() as session:
                        job = session.get(Job, job_id)
                        if job.state.terminal:
                            break
                    time.sleep(0.5)
                wall = time.perf_counter() - started
                join = job.timings.get("stages", {}).get("join", {}).get("seconds", 0.0)
                print(f"  {workers} worker(s): {job.state.value} in {wall:7.1f} s "
                      f"({seconds * 25 / wall:.1f} frames/s); {job.timings.get('segments')} "
                      f"segments; join {join:.1f} s ({join / (seconds / 60):.2f} s per film "
                      "minute)", flush=True)
            finally:
                for process in processes:
                    process.terminate()
                for process in processes:
                    process.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["rss", "workers"])
    parser.add_argument("--seconds", default="60,300")
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--workers", default="1,2")
    args = parser.parse_args()
    lengths = [float(s) for s in args.seconds.split(",")]
    if args.what == "rss":
        bench_rss(lengths, args.height)
    else:
        bench_workers(lengths[0], args.height, [int(n) for n in args.workers.split(",")])


if __name__ == "__main__":
    main()
