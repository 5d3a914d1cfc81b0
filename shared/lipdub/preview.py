"""A side-by-side preview (source | dubbed) so a person can judge a dub at a glance."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from lipdub.media.decode import iter_frames
from lipdub.media.encode import DubWriter, delivery_sound
from lipdub.media.probe import probe_video


def preview_path_for(output: Path) -> Path:
    return output.with_name(f"{output.stem}.preview{output.suffix}")


def write_side_by_side(source: Path, dubbed: Path, output: Path, height: int = 360) -> Path:
    """Source on the left, dub on the right, each scaled to `height`, with the dub's audio."""
    src_info, dub_info = probe_video(source), probe_video(dubbed)
    width = 2 * int(round(dub_info.width * height / dub_info.height / 2))
    frames = dub_info.frame_count
    audio = delivery_sound(dubbed, frames / dub_info.fps)
    with DubWriter(output, 2 * width, height, dub_info.fps, audio, frames, crf=23) as writer:
        src_frames = iter_frames(src_info)
        last_src = None
        for dub_frame in iter_frames(dub_info):
            last_src = next(src_frames, last_src)
            left = cv2.resize(last_src if last_src is not None else dub_frame, (width, height),
                              interpolation=cv2.INTER_AREA)
            right = cv2.resize(dub_frame, (width, height), interpolation=cv2.INTER_AREA)
            writer.write(np.hstack([left, right]))
    return output
