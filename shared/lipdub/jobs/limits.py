"""Per-job media limits (duration, resolution), checked on the fetched inputs before any
media work, so an over-limit job fails at once with a specific error."""

from __future__ import annotations

from pathlib import Path

from lipdub.errors import LipDubError
from lipdub.media.probe import probe_video


class MediaLimitError(LipDubError):
    code = "media_limit_exceeded"


def check_media_limits(video: Path, max_seconds: float, max_width: int,
                       max_height: int) -> None:
    info = probe_video(video)
    if info.duration_s > max_seconds:
        raise MediaLimitError(
            f"The video is {info.duration_s:.0f} s long; this platform takes at most "
            f"{max_seconds:.0f} s per job.", "Split it into reels and submit each.")
    # Either orientation: a portrait 1080x1920 clip is as large as a landscape one.
    long_side, short_side = max(info.width, info.height), min(info.width, info.height)
    if long_side > max(max_width, max_height) or short_side > min(max_width, max_height):
        raise MediaLimitError(
            f"The video is {info.width}x{info.height}; this platform takes at most "
            f"{max_width}x{max_height}.", "Scale it down first.")
