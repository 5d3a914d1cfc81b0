"""How far the new mouth reaches into the face: the engine's matte reshaped. `soft` widens
the feathered edge (a visible seam fades out over more skin), `tight` narrows it (less of
the face re-synced: a chin or a beard that should stay as filmed)."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the command line imports the modes before anything heavy
    import numpy as np


class BlendMode(StrEnum):
    SOFT = "soft"
    STANDARD = "standard"
    TIGHT = "tight"


# The matte's power: under 1 lifts its feathered edge (wider), over 1 lowers it (narrower);
# where the matte is 0 or 1 it stays so, so untouched pixels stay untouched.
_POWER = {BlendMode.SOFT: 0.5, BlendMode.STANDARD: 1.0, BlendMode.TIGHT: 2.0}


def shaped(mask: np.ndarray, mode: BlendMode) -> np.ndarray:
    import numpy as np

    power = _POWER[mode]
    return mask if power == 1.0 else np.power(mask, power, dtype=np.float32)
