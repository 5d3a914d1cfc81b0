"""What QC flags and when: the flags' names and their thresholds (configuration:
LIPDUB_QC_THRESHOLDS). Light on purpose: the settings and the gateway import it.

The defaults, from the measurements in benchmarks/RESULTS.md (QC section) on real footage:
a real speaker's own lips follow their own speech at correlation 0.37-0.40, a warp dub's at
0.84, so a mouth under 0.3 follows the sound less than a real speaker does; a closed mouth
measures 0.02-0.04 (inner-lip gap over eye distance), a speaking one 0.04-0.25.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Flag(StrEnum):
    """What a reviewer should look at in a shot (also the console's colours)."""

    SYNC_OFFSET = "sync_offset"  # the mouth runs ahead of or behind the sound
    WEAK_SYNC = "weak_sync"  # the mouth barely follows the sound
    OPEN_IN_PAUSES = "open_in_pauses"  # the lips do not meet when the voice stops
    SEAM = "seam"  # the blend edge shows
    COLOUR = "colour"  # the re-synced region's colour differs from its surroundings
    JITTER = "jitter"  # the mouth shakes against the face


@dataclass(frozen=True)
class QCThresholds:
    sync_offset_frames: float = 1.0  # flag at this many frames' offset or more
    sync_min_correlation: float = 0.3  # flag a mouth that follows the sound less than this
    closure_min_share: float = 0.5  # flag a shot whose pauses are closed less often
    mouth_closed_below: float = 0.06  # inner-lip gap over eye distance: a closed mouth
    # The blend edge's gradient (grey levels a pixel) beyond the source's at the same place.
    seam_max_added: float = 1.0
    colour_max_delta: float = 4.0  # chroma contrast added by the dub (CIE76 a*b* units)
    jitter_max_ratio: float = 2.5  # mouth shake over the source's
