"""Which face to follow when several are found: `--face largest|center|INDEX|x,y,w,h`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lipdub.errors import BadOptionError
from lipdub.faces.boxes import Detection, iou


@dataclass(frozen=True)
class FaceSelector:
    mode: str  # largest | center | index | box
    index: int = 0
    box: tuple[float, float, float, float] | None = None

    @classmethod
    def parse(cls, spec: str) -> FaceSelector:
        spec = spec.strip().lower()
        if spec in ("largest", "center"):
            return cls(mode=spec)
        if spec.isdigit():
            return cls(mode="index", index=int(spec))
        parts = spec.split(",")
        if len(parts) == 4:
            try:
                x, y, w, h = (float(p) for p in parts)
            except ValueError:
                pass
            else:
                if w > 0 and h > 0:
                    return cls(mode="box", box=(x, y, x + w, y + h))
        raise BadOptionError(
            f"--face '{spec}' is not understood.",
            "Use largest, center, a face index from the left (0, 1, ...), or x,y,w,h in pixels.",
        )

    def matched_nothing(self, most_faces: int) -> BadOptionError:
        """Faces were found, but never the one asked for: say so rather than dub nothing."""
        if self.mode == "index":
            return BadOptionError(
                f"Face {self.index} was asked for, but no frame shows more than {most_faces} "
                f"face{'s' if most_faces > 1 else ''} (faces are counted from 0, left to "
                "right).", f"Give a face index below {most_faces}, or largest / center.")
        return BadOptionError("No face overlaps the face box given.",
                              "Give x,y,w,h in pixels around the face to dub, or largest.")

    def choose(self, detections: list[Detection], frame_size: tuple[int, int]) -> Detection | None:
        if not detections:
            return None
        if self.mode == "largest":
            return max(detections, key=lambda d: d.area)
        if self.mode == "center":
            h, w = frame_size
            middle = np.array([w / 2, h / 2])
            return min(detections, key=lambda d: float(np.linalg.norm(d.center - middle)))
        if self.mode == "index":
            ordered = sorted(detections, key=lambda d: float(d.center[0]))
            return ordered[self.index] if self.index < len(ordered) else None
        assert self.box is not None
        target = np.array(self.box, dtype=np.float32)
        best = max(detections, key=lambda d: iou(d.box, target))
        return best if iou(best.box, target) > 0.1 else None
