"""The `patch` output: only what changed, for compositing in the finishing suite. For each
shot with a re-synced face, one ProRes 4444 clip with alpha (the face matte), from the
shot's first changed frame to its last, at the source's timecode; and an OpenTimelineIO
timeline (plus a CMX 3600 EDL of the patch track) that lays each patch over the original.
The patch files go in a folder beside the timeline; all of it appears at once on success."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import opentimelineio as otio

from lipdub.media.formats import SourceFormat
from lipdub.media.master import threads
from lipdub.media.planes import PlaneLayout, frame_of
from lipdub.media.probe import VideoInfo

PATCH_PIX_FMT = "yuva444p10le"  # ProRes 4444: full chroma and a 10-bit matte
_TOP = 1023


@dataclass(frozen=True)
class Patch:
    shot: int
    start: int  # output frames [start, stop)
    stop: int
    path: Path
    timecode: str


def patch_folder(timeline: Path) -> Path:
    return timeline.with_name(f"{timeline.stem}_patches")


class PatchWriter:
    """Takes each output frame as (planes, matte or None) in order, with the frames'
    shot numbers given up front."""

    def __init__(self, timeline: Path, source: SourceFormat, info: VideoInfo,
                 layout: PlaneLayout, shots: np.ndarray) -> None:
        self.timeline, self._source, self._info = timeline, source, info
        self._layout, self._shots = layout, shots
        self._patch_layout = replace(layout, pix_fmt=PATCH_PIX_FMT, bits=10, shift_x=0,
                                     shift_y=0)
        self._rate = float(info.fps)
        self._drop_frame = ";" in (source.timecode or "")
        self._start = otio.opentime.from_timecode(source.timecode, self._rate) \
            if source.timecode else otio.opentime.RationalTime(0, self._rate)
        self._work = timeline.with_name(f".{timeline.stem}.partial")
        shutil.rmtree(self._work, ignore_errors=True)
        (self._work / patch_folder(timeline).name).mkdir(parents=True)
        self.patches: list[Patch] = []
        self._open: tuple[av.container.OutputContainer, av.VideoStream, Patch] | None = None
        self._blanks = 0  # unchanged frames since the open patch's last changed one
        self.frames_written = 0

    def timecode_at(self, frame: int) -> str:
        return otio.opentime.to_timecode(
            self._start + otio.opentime.RationalTime(frame, self._rate), self._rate,
            self._drop_frame)

    def write(self, frame: tuple[list[np.ndarray], np.ndarray | None]) -> None:
        planes, matte = frame
        k = self.frames_written
        if self._open is not None and self._open[2].shot != self._shots[k]:
            self._finish_patch()
        if matte is None:
            self._blanks += self._open is not None
        else:
            if self._open is None:
                self._start_patch(k)
            for _ in range(self._blanks):  # a pause inside the changed stretch: clear
                self._encode(np.zeros((4, *planes[0].shape), np.uint16))
            self._blanks = 0
            self._encode(self._rgba_planes(planes, matte))
        self.frames_written += 1

    def _rgba_planes(self, planes: list[np.ndarray], matte: np.ndarray) -> np.ndarray:
        """The frame's 4:4:4 planes at 10 bits, plus the matte."""
        up = 10 - self._layout.bits
        return np.stack([p.astype(np.uint16) << up if up > 0 else p.astype(np.uint16)
                         for p in planes] + [np.rint(matte * _TOP).astype(np.uint16)])

    def _start_patch(self, k: int) -> None:
        name = f"shot{self._shots[k]:04d}_{self.timecode_at(k).replace(':', '').replace(';', '')}"
        path = self._work / patch_folder(self.timeline).name / f"{name}.mov"
        container = av.open(str(path), mode="w", format="mov")
        stream = container.add_stream("prores_aw", rate=self._info.fps)
        stream.width, stream.height = self._info.width, self._info.height
        stream.pix_fmt = PATCH_PIX_FMT
        stream.options = {"profile": "4", "vendor": "apl0"}  # ProRes 4444
        threads(stream)
        stream.codec_context.time_base = Fraction(1) / self._info.fps
        timecode = self.timecode_at(k)
        stream.metadata["timecode"] = timecode
        container.metadata["timecode"] = timecode
        self._open = (container, stream, Patch(int(self._shots[k]), k, k, path, timecode))
        self._count = 0

    def _encode(self, planes: np.ndarray) -> None:
        container, stream, patch = self._open
        frame = frame_of(list(planes), self._patch_layout)
        frame.pts = self._count
        frame.time_base = Fraction(1) / self._info.fps
        for packet in stream.encode(frame):
            container.mux(packet)
        self._count += 1

    def _finish_patch(self) -> None:
        container, stream, patch = self._open
        for packet in stream.encode(None):
            container.mux(packet)
        container.close()
        final = patch_folder(self.timeline) / patch.path.name
        self.patches.append(Patch(patch.shot, patch.start, patch.start + self._count, final,
                                  patch.timecode))
        self._open, self._blanks = None, 0

    def close(self) -> None:
        if self._open is not None:
            self._finish_patch()
        timeline = self._timeline()
        otio.adapters.write_to_file(timeline, str(self._work / self.timeline.name))
        edl = otio.schema.Timeline(name=timeline.name,
                                   global_start_time=timeline.global_start_time)
        edl.tracks.append(timeline.tracks[1].deepcopy())
        otio.adapters.write_to_file(edl, str(self._work / f"{self.timeline.stem}.edl"),
                                    adapter_name="cmx_3600")
        folder = patch_folder(self.timeline)
        shutil.rmtree(folder, ignore_errors=True)
        (self._work / folder.name).replace(folder)
        for name in (self.timeline.name, f"{self.timeline.stem}.edl"):
            (self._work / name).replace(self.timeline.with_name(name))
        shutil.rmtree(self._work, ignore_errors=True)

    def _timeline(self) -> otio.schema.Timeline:
        """V1: the source, whole; V2: the patches over it, gaps between."""
        rate = self._rate

        def frames(count: int) -> otio.opentime.RationalTime:
            return otio.opentime.RationalTime(count, rate)

        timeline = otio.schema.Timeline(name=self.timeline.stem,
                                        global_start_time=self._start)
        source = otio.schema.Track(name="V1 source", kind=otio.schema.TrackKind.Video)
        source.append(otio.schema.Clip(
            name=self._info.path.name,
            media_reference=otio.schema.ExternalReference(
                target_url=self._info.path.resolve().as_uri()),
            source_range=otio.opentime.TimeRange(self._start, frames(self.frames_written))))
        patches = otio.schema.Track(name="V2 lipdub", kind=otio.schema.TrackKind.Video)
        position = 0
        for patch in self.patches:
            if patch.start > position:
                patches.append(otio.schema.Gap(source_range=otio.opentime.TimeRange(
                    frames(0), frames(patch.start - position))))
            patches.append(otio.schema.Clip(
                name=patch.path.stem,
                media_reference=otio.schema.ExternalReference(
                    target_url=f"{patch.path.parent.name}/{patch.path.name}"),
                source_range=otio.opentime.TimeRange(self._start + frames(patch.start),
                                                     frames(patch.stop - patch.start))))
            position = patch.stop
        timeline.tracks.extend([source, patches])
        return timeline

    def abort(self) -> None:
        if self._open is not None:
            self._open[0].close()
        shutil.rmtree(self._work, ignore_errors=True)

    def __enter__(self) -> PatchWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
