"""The `match` output: a master in the source's own format, for the finishing editor's
timeline. The picture is re-encoded with the source's codec and profile, pixel format, rate,
colour tags and start timecode (from planes that keep every untouched sample as decoded);
every audio stream is copied packet for packet, in order, with its language, except the
one the new dialogue replaces (encoded in that stream's own codec and layout), or the new
dialogue is added as one more stream. Written to a temporary file, moved into place."""

from __future__ import annotations

import os
from contextlib import suppress
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from lipdub.audio.load import iter_audio
from lipdub.errors import BadOptionError
from lipdub.media.encode import SoundFeed, temp_path_for
from lipdub.media.formats import SourceFormat, UnsupportedFormatError
from lipdub.media.planes import PlaneLayout, frame_of
from lipdub.media.probe import VideoInfo
from lipdub.output_profiles import master_suffix

# Decoder name -> (encoder, decoder profile name -> encoder profile). FFmpeg's prores_aw,
# not prores_ks: on a 1080p 10-bit HQ clip here it encoded 3.6x faster (38.7 against 10.6
# frames/s on 2 cores), at 67.0 dB against 64.0 for 8% more bytes a frame (on a 640x360
# clip 60-63 dB against 64-65: both far past what an eye can tell).
_ENCODERS = {
    "prores": ("prores_aw", {"Proxy": "0", "LT": "1", "Standard": "2", "HQ": "3",
                             "4444": "4", "XQ": "5"}),
    "dnxhd": ("dnxhd", {"DNXHD": "dnxhd", "DNXHR LB": "dnxhr_lb", "DNXHR SQ": "dnxhr_sq",
                        "DNXHR HQ": "dnxhr_hq", "DNXHR HQX": "dnxhr_hqx",
                        "DNXHR 444": "dnxhr_444"}),
    # Long-GOP sources: the encoder takes its profile from the pixel format (High 10,
    # High 4:2:2, Main 10, ...), at a quality where a second generation does not show.
    "h264": ("libx264", None),
    "hevc": ("libx265", None),
}
_LONG_GOP_OPTIONS = {"libx264": {"crf": "10", "preset": "fast"},
                     "libx265": {"crf": "10", "preset": "fast",
                                 "x265-params": "log-level=error"}}
_COLOUR = {"primaries": ("color_primaries", {"bt709": 1, "bt470bg": 5, "smpte170m": 6,
                                             "bt2020": 9}),
           "transfer": ("color_trc", {"bt709": 1, "smpte170m": 6, "bt2020-10": 14,
                                      "smpte2084": 16, "arib-std-b67": 18}),
           "matrix": ("colorspace", {"bt709": 1, "bt470bg": 5, "smpte170m": 6,
                                     "bt2020nc": 9}),
           "range": ("color_range", {"limited": 1, "full": 2})}


# FFmpeg decodes ProRes 4444 at 12 bits; its ProRes encoders take 10 (the 2 bits below
# are what is lost, nothing else).
_ENCODABLE = {"yuva444p12le": "yuva444p10le", "yuv444p12le": "yuv444p10le"}


def threads(stream: av.VideoStream) -> None:
    """Frame (or slice) threads, one per core: ProRes at 1080p encoded 2.1x faster on
    2 cores than with one thread."""
    stream.thread_type = "AUTO"
    stream.codec_context.thread_count = len(os.sched_getaffinity(0))


@dataclass(frozen=True)
class Dialogue:
    """Where the new dialogue goes: over audio stream `replace` (an index among the
    source's audio streams, or the first with that language tag), or added as a new
    stream tagged `language`."""

    replace: int | str | None = None
    language: str | None = None

    def index_in_master(self, source: SourceFormat) -> int:
        """Where the new dialogue sits among the master's audio streams."""
        replaced = self.stream(source)
        return len(source.audio) if replaced is None else replaced

    def stream(self, source: SourceFormat) -> int | None:
        """The index of the audio stream replaced (None: the dialogue is added)."""
        if self.replace is None:
            return None
        if isinstance(self.replace, str) and not self.replace.isdigit():
            tagged = [a.index for a in source.audio if a.language == self.replace]
            if not tagged:
                found = ", ".join(f"{a.index}: {a.language or 'untagged'}"
                                  for a in source.audio) or "none"
                raise BadOptionError(
                    f"replace_audio_stream '{self.replace}': no audio stream of the source "
                    f"is tagged with that language (streams {found}).",
                    "Name a stream by its index or by a language it is tagged with.")
            return tagged[0]
        index = int(self.replace)
        if not 0 <= index < len(source.audio):
            raise BadOptionError(
                f"replace_audio_stream {index} does not exist: the source has "
                f"{len(source.audio)} audio streams (0-{len(source.audio) - 1}).",
                "Name one of them, or add the dialogue as a new stream.")
        return index


def plan_match(source: SourceFormat, info: VideoInfo, dialogue: Dialogue) -> PlaneLayout:
    """What a master of this source needs, refused clearly where it cannot be."""
    profiles = _ENCODERS.get(source.codec, ("", {}))[1]
    if source.codec not in _ENCODERS or (profiles is not None
                                         and source.profile not in profiles):
        raise UnsupportedFormatError(
            f"The 'match' output is built for ProRes, DNxHR, H.264 and HEVC sources; this "
            f"source is {source.codec} {source.profile or ''}".rstrip() + ".",
            "Use --output-profile delivery (H.264), or dub from such a master.")
    if info.rotation:
        raise UnsupportedFormatError("The source is rotated; a master is not.",
                                     "Use --output-profile delivery.")
    suffix = master_suffix(info.path)
    if suffix is None:
        raise UnsupportedFormatError(
            f"The 'match' output writes MOV, MP4 and MXF masters; this source is "
            f"'{info.path.name}'.", "Use --output-profile delivery, or dub from a MOV, MP4 "
            "or MXF master.")
    dialogue.stream(source)  # names a stream that exists
    return PlaneLayout.of(source.pix_fmt, source.colour.get("matrix"),
                          source.colour.get("range") == "full", info.height)


def check_master_output(info: VideoInfo, output: Path) -> None:
    """A master is written in its source's container, under its extension."""
    suffix = master_suffix(info.path)
    if output.suffix.lower() != suffix:
        raise BadOptionError(
            f"A 'match' output of '{info.path.name}' must be written as {suffix}, not "
            f"'{output.name}'.", "Name the output with the source's container extension.")


class MasterWriter:
    def __init__(self, output: Path, source: SourceFormat, info: VideoInfo,
                 layout: PlaneLayout, sound: Path | None, dialogue: Dialogue,
                 total_frames: int) -> None:
        self.output, self._fps = output, info.fps
        written = _ENCODABLE.get(source.pix_fmt, source.pix_fmt)
        self._layout = replace(layout, pix_fmt=written, bits=av.VideoFormat(written)
                               .components[0].bits)
        self._drop = layout.bits - self._layout.bits
        self._tmp = temp_path_for(output)
        self._out = av.open(str(self._tmp), mode="w",  # the container, by the extension
                            format="mp4" if output.suffix.lower() in (".mp4", ".m4v")
                            else source.container)
        self._src = av.open(str(info.path))
        encoder, profiles = _ENCODERS[source.codec]
        video = self._out.add_stream(encoder, rate=info.fps)
        video.width, video.height, video.pix_fmt = info.width, info.height, written
        video.options = _LONG_GOP_OPTIONS[encoder] if profiles is None else {
            "profile": profiles[source.profile],
            **({"vendor": "apl0"} if encoder == "prores_aw" else {})}
        video.codec_context.time_base = Fraction(1) / info.fps
        threads(video)
        for tag, (attribute, codes) in _COLOUR.items():
            if source.colour.get(tag) in codes:
                setattr(video.codec_context, attribute, codes[source.colour[tag]])
        if source.timecode:  # MOV writes a tmcd track from it, MXF its timecode component
            video.metadata["timecode"] = source.timecode
            self._out.metadata["timecode"] = source.timecode
        if source.reel:
            video.metadata["reel_name"] = source.reel
        self._video = video
        self._copied: dict[int, av.stream.Stream] = {}
        replaced = dialogue.stream(source)
        self._total = total_frames
        self._sound: SoundFeed | None = None
        for index, stream in enumerate(self._src.streams.audio):
            if index == replaced:
                self._sound = self._dialogue(sound, stream.codec_context.name,
                                             stream.codec_context.sample_rate,
                                             stream.codec_context.layout.name,
                                             dict(stream.metadata).get("language"))
            else:
                copy = self._out.add_stream_from_template(stream)
                copy.metadata.update(dict(stream.metadata))
                self._copied[stream.index] = copy
        # Subtitle tracks ride along as they are; a timecode track is written afresh from
        # the timecode (copying the source's too would give the file two).
        for stream in self._src.streams.subtitles:
            copy = self._out.add_stream_from_template(stream)
            copy.metadata.update(dict(stream.metadata))
            self._copied[stream.index] = copy
        if replaced is None and sound is not None:
            self._sound = self._dialogue(sound, "pcm_s24le", 48_000, "stereo",
                                         dialogue.language)
        self._packets = self._src.demux(*[self._src.streams[i] for i in self._copied]) \
            if self._copied else iter(())
        self._pending: av.Packet | None = None
        self.frames_written = 0

    def _dialogue(self, sound: Path | None, codec: str, rate: int, layout: str,
                  language: str | None) -> SoundFeed:
        """The new dialogue, encoded as `codec` (silence where there is no `sound`)."""
        chunks = iter_audio(sound, rate, layout) if sound is not None else iter(())
        feed = SoundFeed(chunks, self._total / self._fps, codec, rate, layout)
        feed.add_to(self._out, language)
        return feed

    def write(self, planes: list[np.ndarray]) -> None:
        if self._drop:
            top = (1 << self._layout.bits) - 1
            planes = [np.minimum((p.astype(np.uint32) + (1 << (self._drop - 1)))
                                 >> self._drop, top).astype(np.uint16) for p in planes]
        frame = frame_of(planes, self._layout)
        frame.pts = self.frames_written
        frame.time_base = Fraction(1) / self._fps
        for packet in self._video.encode(frame):
            self._out.mux(packet)
        self.frames_written += 1
        # The sound follows the picture: a film's streams are interleaved as it goes,
        # never held whole.
        self._copy_audio_until(self.frames_written / self._fps)
        self._write_dialogue_until(self.frames_written)

    def _copy_audio_until(self, seconds: Fraction | float) -> None:
        while True:
            packet = self._pending if self._pending is not None \
                else next(self._packets, None)
            self._pending = None
            if packet is None:
                return
            if packet.dts is None:  # a demuxer's flush packet
                continue
            if packet.pts is not None and packet.pts * packet.time_base > seconds:
                self._pending = packet
                return
            packet.stream = self._copied[packet.stream.index]
            self._out.mux(packet)

    def _write_dialogue_until(self, frames: int) -> None:
        if self._sound is not None:
            self._sound.until(frames / self._fps)

    def close(self) -> None:
        try:
            self._copy_audio_until(float("inf"))
            for packet in self._video.encode(None):
                self._out.mux(packet)
            if self._sound is not None:
                self._sound.flush()
            self._out.close()
            self._src.close()
            self._tmp.replace(self.output)
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        if self._sound is not None:
            self._sound.stop()
        for container in (self._out, self._src):
            with suppress(Exception):  # already failing: remove what is left
                container.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> MasterWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

