"""A shot's thumbnail: one frame of the result, scaled down and JPEG-coded with FFmpeg
(PyAV), so the gateway needs no imaging library of its own."""

from __future__ import annotations

import tempfile
from pathlib import Path

import av

from lipdub.storage import LocalStore, ObjectStore

THUMB_WIDTH = 192


def thumbnail_jpeg(store: ObjectStore, key: str, frame_index: int) -> bytes:
    if isinstance(store, LocalStore):
        return _thumbnail(store.local_path(key), frame_index)
    with tempfile.TemporaryDirectory(prefix="lipdub-thumb-") as folder:
        path = Path(folder) / key.rsplit("/", 1)[-1]
        store.get_file(key, path)
        return _thumbnail(path, frame_index)


def _thumbnail(path: Path, frame_index: int) -> bytes:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or 25
        target = frame_index / float(rate)
        container.seek(int(target / stream.time_base), stream=stream, backward=True)
        chosen = None
        for frame in container.decode(stream):
            chosen = frame
            if frame.time is not None and frame.time >= target - 0.5 / float(rate):
                break
        if chosen is None:
            raise ValueError(f"no frame {frame_index} in {path.name}")
        height = max(2, round(chosen.height * THUMB_WIDTH / chosen.width / 2) * 2)
        small = chosen.reformat(width=THUMB_WIDTH, height=height, format="yuvj420p")
        encoder = av.CodecContext.create("mjpeg", "w")
        encoder.width, encoder.height, encoder.pix_fmt = THUMB_WIDTH, height, "yuvj420p"
        encoder.time_base = stream.time_base or 1
        packets = encoder.encode(small) + encoder.encode(None)
        return b"".join(bytes(p) for p in packets)
