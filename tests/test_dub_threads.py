"""The dub's helper threads: the new sound encoded on its own thread (begun before the
output exists, bounded, the same bytes as encoding it in line), frames decoded ahead, and
the engine's study of the analysis pass on its own thread (learning what it would in line)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from lipdub.engines.registry import build_engine
from lipdub.errors import CorruptMediaError
from lipdub.faces.select import FaceSelector
from lipdub.faces.track import analyse_faces
from lipdub.media.ahead import read_ahead
from lipdub.media.decode import iter_frames
from lipdub.media.encode import AUDIO_RATE, DubWriter, aac_sound
from lipdub.media.probe import probe_video
from lipdub.pipeline import _study, analyse_video
from tests.conftest import Samples, assert_no_partial_files

CHUNK = AUDIO_RATE // 10  # 0.1 s


def _tone(seconds: float) -> np.ndarray:
    t = np.arange(round(seconds * AUDIO_RATE)) / AUDIO_RATE
    mono = (0.3 * np.sin(2 * np.pi * 220 * t) * np.sin(2 * np.pi * 0.7 * t)).astype(np.float32)
    return np.stack([mono, 0.5 * mono])


def _chunks(samples: np.ndarray) -> Iterator[np.ndarray]:
    for start in range(0, samples.shape[1], CHUNK):
        yield samples[:, start:start + CHUNK]


def _audio_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as container:
        return [bytes(p) for p in container.demux(container.streams.audio[0]) if p.size]


def _in_line(path: Path, samples: np.ndarray, seconds: Fraction) -> None:
    """The reference: the output stream's own encoder, fed in the caller's thread, the
    track cut or padded with silence to `seconds` as the feed does."""
    total = round(seconds * AUDIO_RATE)
    fitted = np.zeros((2, total), np.float32)
    fitted[:, :min(total, samples.shape[1])] = samples[:, :total]
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("aac", rate=AUDIO_RATE)
        stream.layout, stream.bit_rate = "stereo", 192_000
        for start in range(0, total, 1920):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(fitted[:, start:start + 1920]), format="fltp",
                layout="stereo")
            frame.sample_rate, frame.pts = AUDIO_RATE, start
            frame.time_base = Fraction(1, AUDIO_RATE)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def _threaded(path: Path, samples: np.ndarray, seconds: Fraction) -> None:
    feed = aac_sound(_chunks(samples), seconds)
    time.sleep(0.2)  # it encodes before the output exists, as in a dub's analysis pass
    with av.open(str(path), mode="w") as container:
        feed.add_to(container)
        for k in range(1, int(seconds * 25) + 1):
            feed.until(Fraction(k, 25))
        feed.flush()


@pytest.mark.parametrize("seconds", [Fraction(3), Fraction(5, 2), Fraction(9, 2)],
                         ids=["exact", "cut", "padded"])
def test_sound_feed_writes_the_bytes_an_encoder_in_line_writes(tmp_path: Path,
                                                                seconds: Fraction) -> None:
    samples = _tone(3.0)
    _in_line(tmp_path / "in_line.m4a", samples, seconds)
    _threaded(tmp_path / "threaded.m4a", samples, seconds)
    reference = _audio_packets(tmp_path / "in_line.m4a")
    assert len(reference) >= seconds * AUDIO_RATE / 1024
    assert _audio_packets(tmp_path / "threaded.m4a") == reference


def test_sound_feed_skips_empty_chunks(tmp_path: Path) -> None:
    samples = _tone(1.0)
    _in_line(tmp_path / "in_line.m4a", samples, Fraction(1))
    feed = aac_sound(iter([samples[:, :0], samples[:, :CHUNK], samples[:, :0],
                           samples[:, CHUNK:]]), 1)
    with av.open(str(tmp_path / "threaded.m4a"), mode="w") as container:
        feed.add_to(container)
        feed.flush()
    assert _audio_packets(tmp_path / "threaded.m4a") == _audio_packets(tmp_path / "in_line.m4a")


def _sound_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "lipdub-sound"]


def _wait_for(condition, seconds: float = 30.0) -> None:  # noqa: ANN001 - a predicate
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the sound thread never got there"
        time.sleep(0.01)


def test_sound_feed_runs_a_bounded_lead_ahead_of_the_picture(tmp_path: Path) -> None:
    taken = []

    def counted() -> Iterator[np.ndarray]:
        for chunk in _chunks(_tone(60.0)):
            taken.append(chunk.shape[1])
            yield chunk

    from lipdub.media.encode import SoundFeed

    feed = SoundFeed(counted(), 60, "aac", AUDIO_RATE, "stereo", lead=1.0)
    # Ahead by its lead before any picture: then it waits (one chunk may overshoot).
    _wait_for(lambda: sum(taken) >= AUDIO_RATE)
    time.sleep(0.3)
    assert sum(taken) <= AUDIO_RATE + CHUNK
    with av.open(str(tmp_path / "out.m4a"), mode="w") as container:
        feed.add_to(container)
        feed.until(2.0)
        _wait_for(lambda: sum(taken) >= 3 * AUDIO_RATE)
        time.sleep(0.3)
        assert sum(taken) <= 3 * AUDIO_RATE + CHUNK
        feed.stop()  # thrown away: the thread ends without the rest of the track
    assert sum(taken) < 60 * AUDIO_RATE
    assert not _sound_threads()


def test_a_damaged_sound_fails_the_write_and_leaves_nothing(tmp_path: Path) -> None:
    def damaged() -> Iterator[np.ndarray]:
        yield _tone(0.5)
        raise CorruptMediaError("'voice.wav' has a damaged audio stream.", "Re-export it.")

    output = tmp_path / "out.mp4"
    frame = np.full((64, 64, 3), 128, np.uint8)
    with (pytest.raises(CorruptMediaError, match="damaged audio"),
          DubWriter(output, 64, 64, Fraction(25), aac_sound(damaged(), 2), 50) as writer):
        for _ in range(50):
            writer.write(frame)
    assert not output.exists()
    assert_no_partial_files(tmp_path)
    assert not _sound_threads()


def test_an_output_that_cannot_be_written_stops_its_sound(tmp_path: Path) -> None:
    feed = aac_sound(_chunks(_tone(30.0)), 30)
    with (pytest.raises(FileNotFoundError),
          DubWriter(tmp_path / "gone" / "out.mp4", 64, 64, Fraction(25), feed, 750) as writer):
        writer.write(np.zeros((64, 64, 3), np.uint8))  # the file opens on the first frame
    assert not _sound_threads()


def test_read_ahead_yields_in_order_and_raises_what_the_producer_raised() -> None:
    assert list(read_ahead(iter(range(100)), depth=3)) == list(range(100))

    def failing() -> Iterator[int]:
        yield 1
        raise CorruptMediaError("truncated", "Re-export it.")

    got = []
    with pytest.raises(CorruptMediaError, match="truncated"):
        for item in read_ahead(failing()):
            got.append(item)
    assert got == [1]


def test_read_ahead_closed_early_stops_its_producer_and_closes_the_source() -> None:
    closed = threading.Event()

    def endless() -> Iterator[int]:
        try:
            n = 0
            while True:
                yield n
                n += 1
        finally:
            closed.set()

    ahead = read_ahead(endless(), depth=2)
    assert [next(ahead) for _ in range(5)] == [0, 1, 2, 3, 4]
    ahead.close()
    assert closed.is_set()
    assert not [t for t in threading.enumerate() if t.name == "lipdub-read-ahead"]


def test_the_study_on_its_own_thread_learns_what_it_learns_in_line(samples: Samples) -> None:
    clip = samples.clip("talking", 4.0, seed=1)
    threaded = build_engine("warp", None)
    in_line = build_engine("warp", None)
    try:
        analysis = analyse_video(clip, threaded)
        info = probe_video(clip)
        track = analyse_faces(iter_frames(info), info.frame_count, FaceSelector(mode="largest"),
                              on_frame=lambda i, rgb, box: _study(in_line, i, rgb, box))
        learned, expected = analysis.study, in_line.study_state()
    finally:
        threaded.close()
        in_line.close()
    np.testing.assert_array_equal(analysis.track.boxes, track.boxes)
    assert expected is not None  # the clip's mouth opens: there is something to learn
    assert learned is not None and learned.keys() == expected.keys()
    for name in expected:
        np.testing.assert_array_equal(learned[name], expected[name])


def test_a_failing_study_fails_the_analysis(samples: Samples) -> None:
    clip = samples.clip("talking", 4.0, seed=1)
    engine = build_engine("warp", None)

    def broken(*args: object) -> None:
        raise RuntimeError("the study broke")

    engine.study = broken  # type: ignore[method-assign]
    try:
        with pytest.raises(RuntimeError, match="the study broke"):
            analyse_video(clip, engine)
    finally:
        engine.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("lipdub-study")]
