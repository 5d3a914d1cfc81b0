"""What a studio's source is, as a finishing editor would describe it: codec and profile,
bit depth, chroma subsampling, colour tags, scan, start timecode and reel, and the audio
streams with their layouts and languages. Read from the headers (PyAV), no frame decoded.

The dub's delivery output today is 8-bit 4:2:0 H.264 with one stereo AAC track, so the
format also says what such an output does not keep, for the summary and the job record."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from lipdub.errors import LipDubError
from lipdub.media.probe import open_media

# FFmpeg's AVFieldOrder values (libavcodec/defs.h).
_SCAN = {0: "unknown", 1: "progressive", 2: "interlaced (top field first)",
         3: "interlaced (bottom field first)", 4: "interlaced (top field first, bottom coded "
         "first)", 5: "interlaced (bottom field first, top coded first)"}
# FFmpeg's colour enums (libavutil/pixfmt.h), by the names editors use.
_PRIMARIES = {1: "bt709", 5: "bt470bg", 6: "smpte170m", 9: "bt2020", 11: "smpte431",
              12: "smpte432"}
_TRANSFER = {1: "bt709", 6: "smpte170m", 13: "iec61966-2-1", 14: "bt2020-10",
             15: "bt2020-12", 16: "smpte2084", 18: "arib-std-b67"}
_MATRIX = {0: "rgb", 1: "bt709", 5: "bt470bg", 6: "smpte170m", 9: "bt2020nc",
           10: "bt2020c"}
_RANGE = {1: "limited", 2: "full"}
_CHROMA = {(32, 32): "4:2:0", (32, 64): "4:2:2", (64, 64): "4:4:4", (16, 64): "4:1:1"}

DELIVERY = {"codec": "h264", "bit_depth": 8, "chroma": "4:2:0", "audio_streams": 1}


class UnsupportedFormatError(LipDubError):
    code = "unsupported_format"


@dataclass(frozen=True)
class AudioStream:
    index: int  # among the file's audio streams
    codec: str
    channels: int
    layout: str
    sample_rate: int
    language: str | None


@dataclass(frozen=True)
class SourceFormat:
    container: str
    codec: str
    profile: str | None
    pix_fmt: str
    bit_depth: int
    chroma: str
    alpha: bool
    scan: str
    width: int
    height: int
    rate: str  # as a fraction: 24000/1001
    colour: dict[str, str | None]  # primaries, transfer, matrix, range
    timecode: str | None
    reel: str | None
    audio: list[AudioStream] = field(default_factory=list)

    @property
    def interlaced(self) -> bool:
        return self.scan.startswith("interlaced")

    def describe(self) -> str:
        """One line, as an editor says it: 'prores HQ 10-bit 4:2:2 1920x1080 @ 24000/1001,
        bt709, TC 01:00:00:00, audio: stereo (eng), 5.1'."""
        video = " ".join(filter(None, [self.codec, self.profile, f"{self.bit_depth}-bit",
                                       self.chroma, "+ alpha" if self.alpha else None,
                                       f"{self.width}x{self.height} @ {self.rate}"]))
        audio = ", ".join(a.layout + (f" ({a.language})" if a.language else "")
                          for a in self.audio) or "none"
        parts = [video, self.colour.get("primaries") or "colour untagged",
                 f"TC {self.timecode}" if self.timecode else None,
                 f"reel {self.reel}" if self.reel else None, f"audio: {audio}"]
        return ", ".join(p for p in parts if p)

    def dropped_by_delivery(self) -> list[str]:
        """What an 8-bit 4:2:0 H.264 + one stereo AAC output does not keep of this source."""
        lost = []
        if self.codec != DELIVERY["codec"]:
            lost.append(f"{self.codec}{' ' + self.profile if self.profile else ''} codec")
        if self.bit_depth > DELIVERY["bit_depth"]:
            lost.append(f"{self.bit_depth}-bit precision")
        if self.chroma != DELIVERY["chroma"]:
            lost.append(f"{self.chroma} chroma")
        if self.alpha:
            lost.append("alpha channel")
        if self.timecode:
            lost.append(f"start timecode {self.timecode}")
        if self.reel:
            lost.append(f"reel name {self.reel}")
        if len(self.audio) > DELIVERY["audio_streams"]:
            extra = len(self.audio) - DELIVERY["audio_streams"]
            lost.append(f"{extra} of {len(self.audio)} audio streams")
        return lost

    def to_dict(self) -> dict:
        return {**asdict(self), "interlaced": self.interlaced}


def read_format(path: Path) -> SourceFormat:
    with open_media(path) as container:
        stream = container.streams.video[0]
        context = stream.codec_context
        pixel = context.format
        components = pixel.components if pixel is not None else []
        tags = {**dict(container.metadata),
                **{k: v for s in container.streams for k, v in dict(s.metadata).items()},
                **dict(stream.metadata)}
        # Chroma planes' size for a 64x64 picture: 32x32 is 4:2:0, 32x64 4:2:2, ...
        chroma = _CHROMA.get((pixel.chroma_width(64), pixel.chroma_height(64)), "other") \
            if pixel is not None else "unknown"
        return SourceFormat(
            container=container.format.name.split(",")[0], codec=context.name,
            profile=context.profile, pix_fmt=context.pix_fmt or "unknown",
            bit_depth=max((c.bits for c in components), default=8),
            chroma=chroma, alpha=any(c.is_alpha for c in components),
            scan=_SCAN.get(int(context.field_order or 0), "unknown"),
            width=context.width, height=context.height, rate=str(stream.average_rate),
            colour={"primaries": _PRIMARIES.get(int(context.color_primaries)),
                    "transfer": _TRANSFER.get(int(context.color_trc)),
                    "matrix": _MATRIX.get(int(context.colorspace)),
                    "range": _RANGE.get(int(context.color_range))},
            timecode=tags.get("timecode"), reel=tags.get("reel_name"),
            audio=[_audio_stream(i, a) for i, a in enumerate(container.streams.audio)])


def _audio_stream(index: int, stream) -> AudioStream:  # noqa: ANN001 - av AudioStream
    layout = stream.codec_context.layout
    channels = layout.nb_channels
    name = layout.name if not layout.name.endswith("channels") else f"{channels} channels"
    language = dict(stream.metadata).get("language")
    return AudioStream(index, stream.codec_context.name, channels,
                       "mono" if channels == 1 else name, stream.codec_context.sample_rate,
                       None if language in (None, "und") else language)


def check_progressive(path: Path, source: SourceFormat) -> None:
    """Interlaced footage is refused: its fields are 1/50 s apart, and a face re-synced on
    the woven frame would comb. Deinterlacing changes every pixel, so it is the user's
    decision, made before the dub."""
    if source.interlaced:
        raise UnsupportedFormatError(
            f"'{path.name}' is {source.scan} {source.codec} ({source.describe()}): LipDub "
            "dubs progressive footage.",
            "Deinterlace it first (e.g. ffmpeg -i IN -vf bwdif -c:v prores_ks -profile:v 3 "
            "OUT.mov, which keeps the frame rate), then dub that.")
