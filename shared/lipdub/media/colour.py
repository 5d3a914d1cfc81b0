"""RGB <-> YUV conversion for decode and encode, as one matched pair.

8-bit 4:2:0 limited-range video (nearly all delivery footage) goes through OpenCV's BT.601
I420 conversion both ways: it is about 15x faster than swscale's accurate path and a round
trip keeps untouched pixels within one level. Other formats (10-bit, 4:2:2/4:4:4, full-range
JPEG YUV, odd sizes) use swscale with full chroma and accurate rounding, whose default path
would darken dark tones by about 2 levels per generation.
"""

from __future__ import annotations

import av
import cv2
import numpy as np
from av.video.reformatter import Interpolation

ACCURATE = (Interpolation.BILINEAR | Interpolation.ACCURATE_RND
            | Interpolation.FULL_CHR_H_INT | Interpolation.FULL_CHR_H_INP)
_JPEG_RANGE = 2  # AVCOL_RANGE_JPEG: full-range YUV


def frame_to_rgb(frame: av.VideoFrame) -> np.ndarray:
    if (frame.format.name == "yuv420p" and frame.color_range != _JPEG_RANGE
            and frame.width % 2 == 0 and frame.height % 2 == 0):
        return cv2.cvtColor(frame.to_ndarray(), cv2.COLOR_YUV2RGB_I420)
    return frame.to_ndarray(format="rgb24", interpolation=ACCURATE)


def rgb_to_frame(rgb: np.ndarray) -> av.VideoFrame:
    """An even-sized RGB image as a yuv420p frame (the inverse of `frame_to_rgb`)."""
    return av.VideoFrame.from_ndarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420),
                                      format="yuv420p")
