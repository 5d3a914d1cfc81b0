"""What a dub's render writes, by output profile: how a source frame is decoded, what the
face analysis sees of it, how the re-synced mouths go back in, and the writer.

  delivery  H.264 8-bit 4:2:0 + one stereo AAC track in MP4: review copies, the web
  match     the source's own format (media.master): a master for the finishing suite
  patch     per changed shot, the faces with their matte, on a timeline (media.patches)

Adding a profile: its name in output_profiles, one class here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import av
import cv2
import numpy as np

from lipdub.composite import composite, patch_pixels
from lipdub.engines.base import MouthPatch
from lipdub.errors import BadOptionError
from lipdub.media.encode import DELIVERY_SUFFIXES, DubWriter, SoundFeed, delivery_sound
from lipdub.media.formats import SourceFormat, read_format
from lipdub.media.master import Dialogue, MasterWriter, check_master_output, plan_match
from lipdub.media.patches import PatchWriter
from lipdub.media.planes import (
    Picture,
    PlaneLayout,
    composite_planes,
    face_samples,
    read_picture,
)
from lipdub.media.probe import VideoInfo, probe_video
from lipdub.output_profiles import MASTER_SUFFIXES, OutputProfile
from lipdub.sync import SyncMode


class FrameWriter(Protocol):
    def write(self, frame: Any) -> None: ...

    def __enter__(self) -> FrameWriter: ...

    def __exit__(self, *exc: object) -> None: ...


class Output(Protocol):
    profile: OutputProfile
    convert: Callable[[av.VideoFrame], Any] | None  # None: upright 8-bit RGB
    suffixes: tuple[str, ...]  # the output file's allowed extensions
    playable: bool  # the output is the dubbed picture itself (QC measures it)

    def rgb(self, frame: Any) -> np.ndarray: ...

    def composited(self, frame: Any, patches: list[MouthPatch | None]) -> Any: ...

    def sound(self, sound: Path, seconds: Fraction) -> SoundFeed | None:
        """The new sound, its encoding begun now (a dub starts it before its analysis
        pass); None where the writer makes its own from `sound`."""

    def writer(self, output: Path, info: VideoInfo, sound: Path, feed: SoundFeed | None,
               shots: np.ndarray) -> FrameWriter:
        """`shots`: each output frame's shot number (its length: the frame count).
        `feed`: what sound() gave (None: picture only)."""

    def dropped(self, source: SourceFormat) -> list[str]: ...


class Delivery:
    profile = OutputProfile.DELIVERY
    convert = None
    suffixes = DELIVERY_SUFFIXES
    playable = True

    def rgb(self, frame: np.ndarray) -> np.ndarray:
        return frame

    def composited(self, frame: np.ndarray, patches: list[MouthPatch | None]) -> np.ndarray:
        for patch in patches:
            if patch is not None:
                frame = composite(frame, patch)
        return frame

    def sound(self, sound: Path, seconds: Fraction) -> SoundFeed:
        return delivery_sound(sound, seconds)

    def writer(self, output: Path, info: VideoInfo, sound: Path, feed: SoundFeed | None,
               shots: np.ndarray) -> DubWriter:
        return DubWriter(output, info.width, info.height, info.fps, feed, len(shots))

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
    playable = True

    @classmethod
    def plan(cls, source: SourceFormat, info: VideoInfo, output: Path,
             dialogue: Dialogue) -> Match:
        layout = plan_match(source, info, dialogue)
        check_master_output(info, output)
        return cls(source, layout, dialogue)

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

    def sound(self, sound: Path, seconds: Fraction) -> None:
        return None  # the writer encodes it in the replaced stream's own codec

    def writer(self, output: Path, info: VideoInfo, sound: Path, feed: SoundFeed | None,
               shots: np.ndarray) -> MasterWriter:
        return MasterWriter(output, self.source, info, self.layout, sound, self.dialogue,
                            len(shots))

    def dropped(self, source: SourceFormat) -> list[str]:
        return []


class Patches(Match):
    """Only what changed: per changed shot, the face and its matte (media.patches)."""

    profile = OutputProfile.PATCH
    suffixes = (".otio",)
    playable = False  # a timeline of patches over the source

    @classmethod
    def plan(cls, source: SourceFormat, info: VideoInfo, output: Path,
             dialogue: Dialogue) -> Patches:
        return cls(source, plan_match(source, info, dialogue), dialogue)

    def composited(self, frame: Picture, patches: list[MouthPatch | None]) -> tuple:
        """(the frame as 4:4:4 planes with each face's own samples under its matte, the
        matte), or (the planes, None) where nothing changed. Alpha over the source, the
        faces give what `match` writes."""
        placed = [p for p in patches if p is not None]
        if not placed:
            return frame.planes, None
        height, width = frame.planes[0].shape
        planes = [frame.planes[0].copy()] + [
            cv2.resize(p, (width, height), interpolation=cv2.INTER_NEAREST)
            for p in frame.planes[1:3]]  # the matte is the patch's alpha
        matte = np.zeros((height, width), np.float32)
        top = (1 << self.layout.bits) - 1
        for patch in placed:
            pixels = patch_pixels(frame.rgb, patch)
            (x0, y0, x1, y1), samples, mask = face_samples(frame, patch, pixels, self.layout)
            on = mask > 0
            for plane, channel in zip(planes, np.moveaxis(samples, -1, 0), strict=True):
                region = plane[y0:y1, x0:x1]
                region[on] = np.clip(np.rint(channel[on]), 0, top)
            np.maximum(matte[y0:y1, x0:x1], mask, out=matte[y0:y1, x0:x1])
        return planes, matte

    def writer(self, output: Path, info: VideoInfo, sound: Path, feed: SoundFeed | None,
               shots: np.ndarray) -> PatchWriter:
        return PatchWriter(output, self.source, info, self.layout, shots)


def plan_output(profile: OutputProfile, video: Path, output: Path, sync_mode: SyncMode,
                dialogue: Dialogue, restoring: bool) -> tuple[Match, SyncMode]:
    """A `match` (or `patch`) output for this source, and the sync mode it runs with: a
    master keeps every frame of the source (the new dialogue is padded or cut to it)."""
    if restoring:
        raise BadOptionError("Identity restoration does not write 'match' masters yet.",
                             "Dub without restoration, or use --output-profile delivery.")
    if sync_mode in (SyncMode.LOOP, SyncMode.BOUNCE):
        raise BadOptionError(
            f"A 'match' master keeps the source's frames; sync mode {sync_mode.value} "
            "repeats them.", "Use sync mode silence (or leave it out).")
    kind = Patches if profile is OutputProfile.PATCH else Match
    return (kind.plan(read_format(video), probe_video(video), output, dialogue),
            SyncMode.SILENCE)
