"""From a detector box to the crop an engine works on: padded down to include the chin."""

from __future__ import annotations

import numpy as np

# BlazeFace's box runs from the brows to about the lower lip; the jaw and chin lie below it.
PAD_TOP, PAD_BOTTOM, PAD_SIDES = 0.0, 0.22, 0.06


def crop_box(box: np.ndarray, frame_size: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """Padded integer crop inside the frame, or None when too little of the face is visible."""
    h, w = frame_size
    x0, y0, x1, y1 = (float(v) for v in box)
    bw, bh = x1 - x0, y1 - y0
    x0, x1 = x0 - PAD_SIDES * bw, x1 + PAD_SIDES * bw
    y0, y1 = y0 - PAD_TOP * bh, y1 + PAD_BOTTOM * bh
    cx0, cy0 = max(0, int(round(x0))), max(0, int(round(y0)))
    cx1, cy1 = min(w, int(round(x1))), min(h, int(round(y1)))
    if cx1 - cx0 < 16 or cy1 - cy0 < 16:
        return None
    return cx0, cy0, cx1, cy1
