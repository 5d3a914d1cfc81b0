"""What a dub's render writes, by output profile: how a source frame is decoded, what the
face analysis sees of it, how the re-synced mouths go back in, and the writer.

  delivery  H.264 8-bit 4:2:0 + one stereo AAC track in MP4: review copies, the web
  match     the source's own format (media.master): a master for the finishing suite
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import av
import numpy as np

from lipdub.composite import composite, patch_pixels
from lipdub.engines.base import MouthPatch
from lipdub.errors import BadOptionError
from lipdub.media.encode import DELIVERY_SUFFIXES, MASTER_SUFFIXES, DubWriter
from lipdub.media.formats import SourceFormat, read_format
from lipdub.media.master import Dialogue, MasterWriter, plan_match
from lipdub.media.planes import Picture, PlaneLayout, composite_planes, read_picture
from lipdub.media.probe import VideoInfo, probe_video
from lipdub.output_profiles import OutputProfile
from lipdub.sync import SyncMode


class FrameWriter(Protocol):
    def write(self, frame: Any) -> None: ...

    def __enter__(self) -> FrameWriter: ...

    def __exit__(self, *exc: object) -> None: ...


class Output(Protocol):
    profile: OutputProfile
    convert: Callable[[av.VideoFrame], Any] | None  # None: upright 8-bit RGB
    suffixes: tuple[str, ...]  # the output file's allowed extensions

    def rgb(self, frame: Any) -> np.ndarray: ...

    def composited(self, frame: Any, patches: list[MouthPatch | None]) -> Any: ...

    def writer(self, output: Path, info: VideoInfo, sound: Path,
               chunks: Iterator[np.ndarray] | None, frames: int) -> FrameWriter: ...

    def dropped(self, source: SourceFormat) -> list[str]: ...


class Delivery:
    profile = OutputProfile.DELIVERY
    convert = None
    suffixes = DELIVERY_SUFFIXES

    def rgb(self, frame: np.ndarray) -> np.ndarray:
        return frame

    def composited(self, frame: np.ndarray, patches: list[MouthPatch | None]) -> np.ndarray:
        for patch in patches:
            if patch is not None:
                frame = composite(frame, patch)
        return frame

    def writer(self, output: Path, info: VideoInfo, sound: Path,
               chunks: Iterator[np.ndarray] | None, frames: int) -> DubWriter:
        return DubWriter(output, info.width, info.height, info.fps, chunks, frames)

    def dropped(self, source: SourceFormat) -> list[str]:
        return source.dropped_by_delivery()


@dataclass
class Match:
    """A master like the source: its planes kept at their own precision."""

    source: SourceFormat
    layout: PlaneLayout
    dialogue: Dialogue
    profile = OutputProfile.MATCH
    suffixes = MASTER_SUFFIXES

    @classmethod
    def plan(cls, source: SourceFormat, info: VideoInfo, output: Path,
             dialogue: Dialogue) -> Match:
        return cls(source, plan_match(source, info, output, dialogue), dialogue)

    @property
    def convert(self) -> Callable[[av.VideoFrame], Picture]:
        return partial(read_picture, layout=self.layout)

    def rgb(self, frame: Picture) -> np.ndarray:
        return frame.rgb

    def composited(self, frame: Picture, patches: list[MouthPatch | None]) -> list:
        for patch in patches:
            if patch is not None:
                composite_planes(frame, patch, patch_pixels(frame.rgb, patch), self.layout)
        return frame.planes

    def writer(self, output: Path, info: VideoInfo, sound: Path,
               chunks: Iterator[np.ndarray] | None, frames: int) -> MasterWriter:
        return MasterWriter(output, self.source, info, self.layout, sound, self.dialogue,
                            frames)

    def dropped(self, source: SourceFormat) -> list[str]:
        return []


def plan_output(video: Path, output: Path, sync_mode: SyncMode, dialogue: Dialogue,
                restoring: bool) -> tuple[Match, SyncMode]:
    """A `match` output for this source, and the sync mode it runs with: a master keeps
    every frame of the source (the new dialogue is padded or cut to it)."""
    if restoring:
        raise BadOptionError("Identity restoration does not write 'match' masters yet.",
                             "Dub without restoration, or use --output-profile delivery.")
    if sync_mode in (SyncMode.LOOP, SyncMode.BOUNCE):
        raise BadOptionError(
            f"A 'match' master keeps the source's frames; sync mode {sync_mode.value} "
            "repeats them.", "Use sync mode silence (or leave it out).")
    return (Match.plan(read_format(video), probe_video(video), output, dialogue),
            SyncMode.SILENCE)
