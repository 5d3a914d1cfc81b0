"""`match` masters: a ProRes or DNxHR source dubbed back into its own format, with its
timecode, colour tags, bit depth and every other audio stream kept. Masters made here."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import av
import cv2
import ffmpeg
import imageio_ffmpeg
import numpy as np
import opentimelineio as otio
import pytest

from lipdub.media.formats import read_format
from lipdub.media.planes import PlaneLayout, read_picture
from lipdub.media.probe import probe_video
from lipdub.samples.dialogue import Dialogue
from tests.test_cli_dub import run_cli
from tests.test_platform_api import _upload, _wait, platform  # noqa: F401 - a fixture


def _master(source: Path, output: Path, video: dict, rate: str, timecode: str,
            seconds: float = 4.0, reel: str | None = None) -> Path:
    """`source`'s picture and sound as a master: the dialogue (its own sound, stereo),
    an M&E stream and a 5.1 mix, tagged BT.709."""
    clip = ffmpeg.input(str(source))
    picture = clip.video.filter("fps", rate).filter(
        "setparams", color_primaries="bt709", color_trc="bt709", colorspace="bt709",
        range="tv")
    music = ffmpeg.input("sine=f=220:d=4", f="lavfi").audio.filter("aformat",
                                                                    channel_layouts="stereo")
    mix = ffmpeg.input("sine=f=330:d=4", f="lavfi").audio.filter("aformat",
                                                                  channel_layouts="5.1")
    dialogue = clip.audio.filter("aformat", channel_layouts="stereo")
    ffmpeg.output(picture, dialogue, music, mix, str(output), acodec="pcm_s24le",
                  ar=48_000, timecode=timecode, t=seconds, **video,
                  **{"metadata:s:a:0": "language=eng", "metadata:s:a:2": "language=eng"},
                  **({"metadata:s:v:0": f"reel_name={reel}"} if reel else {})).run(
        cmd=imageio_ffmpeg.get_ffmpeg_exe(), overwrite_output=True, quiet=True)
    return output


def _transcode(source: Path, output: Path, **options: object) -> Path:
    clip = ffmpeg.input(str(source))
    ffmpeg.output(clip.video, clip.audio, str(output), acodec="copy", **options).run(
        cmd=imageio_ffmpeg.get_ffmpeg_exe(), overwrite_output=True, quiet=True)
    return output


def _packets(path: Path, index: int) -> list[bytes]:
    with av.open(str(path)) as container:
        stream = container.streams.audio[index]
        return [bytes(p) for p in container.demux(stream) if p.size]


def _planes(path: Path, layout: PlaneLayout) -> list[list[np.ndarray]]:
    with av.open(str(path)) as container:
        return [read_picture(f, layout).planes for f in container.decode(video=0)]


def _psnr(a: np.ndarray, b: np.ndarray, peak: float = 1023.0) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(peak**2 / mse)


def _check_pixels(source: Path, output: Path, folder: Path, codec: dict,
                  face_at: tuple[slice, slice]) -> None:
    """Outside the face, no more than the codec's own generation loss (the source
    re-encoded by FFmpeg alone, the same settings); the face re-synced; 10-bit samples
    kept at 10 bits."""
    before = read_format(source)
    layout = PlaneLayout.of(before.pix_fmt, "bt709", False, before.height)
    original, dubbed = _planes(source, layout), _planes(output, layout)
    assert len(dubbed) == len(original)
    reencoded = folder / f"reencoded{source.suffix}"
    ffmpeg.input(str(source)).output(str(reencoded), an=None, **codec).run(
        cmd=imageio_ffmpeg.get_ffmpeg_exe(), overwrite_output=True, quiet=True)
    face = np.zeros(original[0][0].shape, bool)
    face[face_at] = True
    outside = [_psnr(a[0][~face], b[0][~face]) for a, b in zip(original, dubbed, strict=True)]
    baseline = [_psnr(a[0][~face], b[0][~face])
                for a, b in zip(original, _planes(reencoded, layout), strict=True)]
    print(f"{source.name}: outside the face, the dub {min(outside):.1f}-{max(outside):.1f} "
          f"dB, FFmpeg's re-encode {min(baseline):.1f}-{max(baseline):.1f} dB")
    # A codec that spends a fixed number of bits per frame (DNxHR) gives a changed face
    # some of the rest's: measured up to 0.6 dB.
    assert min(outside) >= min(baseline) - 1.0
    mouth_change = max(np.abs(a[0][face].astype(int) - b[0][face].astype(int)).max()
                       for a, b in zip(original, dubbed, strict=True))
    assert mouth_change > 100, mouth_change  # 10-bit units
    assert (dubbed[0][0] % 4).any()  # 10-bit precision, not 8-bit values shifted up


def test_a_prores_master_comes_back_as_the_same_master(
        tmp_path: Path, talking_clip: Path, new_voice: Path) -> None:
    source = _master(talking_clip, tmp_path / "master.mov",
                     {"vcodec": "prores_ks", "profile:v": 3, "pix_fmt": "yuv422p10le"},
                     "24000/1001", "01:00:00:00", reel="A001C003")
    output = tmp_path / "dubbed.mov"
    code, text = run_cli("dub", "--video", str(source), "--audio", str(new_voice),
                         "--output", str(output), "--engine", "warp",
                         "--output-profile", "match", "--replace-audio-stream", "0")
    assert code == 0, text
    assert "does not keep" not in text
    before, after = read_format(source), read_format(output)
    for kept in ("container", "codec", "profile", "pix_fmt", "bit_depth", "chroma", "rate",
                 "colour", "timecode", "reel", "width", "height"):
        assert getattr(after, kept) == getattr(before, kept), kept
    assert (after.profile, after.bit_depth, after.chroma, after.rate, after.timecode,
            after.reel) == ("HQ", 10, "4:2:2", "24000/1001", "01:00:00:00", "A001C003")
    assert [(a.layout, a.language) for a in after.audio] == \
        [(a.layout, a.language) for a in before.audio]
    for index in (1, 2):  # M&E and the 5.1 mix: packet for packet
        assert _packets(output, index) == _packets(source, index)
    assert _packets(output, 0) != _packets(source, 0)  # the new dialogue
    # Measured: the dub 60.2-62.7 dB outside the face, FFmpeg's own re-encode the same;
    # the mouth changed by up to 705 (10-bit units).
    _check_pixels(source, output, tmp_path, {"vcodec": "prores_aw", "profile:v": 3,
                                             "pix_fmt": "yuv422p10le"},
                  (slice(120, 300), slice(220, 420)))


def test_a_dnxhr_mxf_master_keeps_drop_frame_timecode(
        tmp_path: Path, talking_clip: Path, new_voice: Path) -> None:
    source = _master(talking_clip, tmp_path / "master.mxf",
                     {"vcodec": "dnxhd", "profile:v": "dnxhr_hqx", "pix_fmt": "yuv422p10le",
                      "s": "1280x720"}, "30000/1001", "00:59:59;28")
    output = tmp_path / "dubbed.mxf"
    code, text = run_cli("dub", "--video", str(source), "--audio", str(new_voice),
                         "--output", str(output), "--engine", "warp",
                         "--output-profile", "match", "--dialogue-language", "fra")
    assert code == 0, text
    before, after = read_format(source), read_format(output)
    assert (after.container, after.codec, after.profile, after.bit_depth, after.chroma,
            after.rate, after.timecode) == ("mxf", "dnxhd", "DNXHR HQX", 10, "4:2:2",
                                            "30000/1001", "00:59:59;28")
    assert len(after.audio) == len(before.audio) + 1  # the dialogue added, not replacing
    # (FFmpeg's MXF muxer writes no language tags: the MOV test checks them.)
    # Measured: the dub 68.4-70.0 dB outside the face, FFmpeg's re-encode 69.0-70.0 dB.
    _check_pixels(source, output, tmp_path, {"vcodec": "dnxhd", "profile:v": "dnxhr_hqx",
                                             "pix_fmt": "yuv422p10le"},
                  (slice(240, 600), slice(440, 840)))
    for index in range(len(before.audio)):
        assert _packets(output, index) == _packets(source, index)


def test_match_is_refused_where_it_cannot_keep_the_format(
        tmp_path: Path, talking_clip: Path, new_voice: Path) -> None:
    master = _master(talking_clip, tmp_path / "master.mov",
                     {"vcodec": "prores_ks", "profile:v": 3, "pix_fmt": "yuv422p10le"},
                     "25", "10:00:00:00")
    matroska = _transcode(talking_clip, tmp_path / "clip.mkv", vcodec="copy")
    mjpeg = _transcode(talking_clip, tmp_path / "mjpeg.mov", vcodec="mjpeg")
    for video, output, extra, message in (
            (matroska, "out.mkv", [], "writes MOV, MP4 and MXF masters"),
            (mjpeg, "out.mov", [], "built for ProRes, DNxHR, H.264 and HEVC sources"),
            (master, "out.mp4", [], "must be written as .mov"),
            (master, "out.mov", ["--replace-audio-stream", "3"],
             "replace_audio_stream 3 does not exist: the source has 3 audio streams"),
            (master, "out.mov", ["--sync-mode", "loop"], "keeps the source's frames")):
        code, text = run_cli("dub", "--video", str(video), "--audio", str(new_voice),
                             "--output", str(tmp_path / output), "--output-profile", "match",
                             *extra)
        assert code == 2 and message in text, text
        assert not (tmp_path / output).exists()


def test_a_job_delivers_a_master(platform, talking_clip: Path, new_voice: Path,  # noqa: F811
                                 tmp_path: Path) -> None:
    client, a, _, settings = platform
    source = _master(talking_clip, tmp_path / "master.mov",  # LT, 1 s: under 5 MB
                     {"vcodec": "prores_ks", "profile:v": 1, "pix_fmt": "yuv422p10le"},
                     "25", "10:00:00:00", seconds=1.0)
    video, audio = _upload(client, a, source), _upload(client, a, new_voice)
    r = client.post("/v1/jobs", headers=a, json={"video": video, "audio": audio, "options": {
        "engine": "warp", "output_profile": "match", "replace_audio_stream": "eng",
        "review_copy": True}})
    assert r.status_code == 201, r.text
    done = _wait(client, a, r.json()["id"])
    assert done["state"] == "succeeded", done
    result = client.get(f"/v1/jobs/{done['id']}/result", headers=a)
    assert result.status_code == 200 and result.headers["content-type"] == "video/quicktime"
    output = tmp_path / "result.mov"
    output.write_bytes(result.content)
    before, after = read_format(source), read_format(output)
    assert (after.codec, after.profile, after.bit_depth, after.chroma, after.timecode) == \
        (before.codec, before.profile, 10, "4:2:2", "10:00:00:00")
    assert _packets(output, 1) == _packets(source, 1) and len(after.audio) == 3
    assert _packets(output, 0) != _packets(source, 0)  # "eng": the first stream
    assert not any("does not keep" in w for w in done["timings"]["warnings"])
    assert done["review_copy"] is True
    review = client.get(f"/v1/jobs/{done['id']}/result?copy=review", headers=a)
    assert review.status_code == 200 and review.headers["content-type"] == "video/mp4"
    (tmp_path / "review.mp4").write_bytes(review.content)
    assert read_format(tmp_path / "review.mp4").codec == "h264"
    for options, message in (({"replace_audio_stream": 0}, "are for output_profile match"),
                             ({"output_profile": "match", "normalise_loudness": True},
                              "does not take"),
                             ({"output_profile": "match", "output_format": "mov"},
                              "leave output_format out"),
                             ({"output_profile": "match", "sync_mode": "loop"},
                              "keeps the source's frames"),
                             ({"output_profile": "patch", "review_copy": True},
                              "review_copy is made from a master"),
                             ({"review_copy": True}, "review_copy is made from a master"),
                             ({"output_profile": "match", "replace_audio_stream": "e1"},
                              "replace_audio_stream")):
        r = client.post("/v1/jobs", headers=a, json={"video": video, "audio": audio,
                                                     "options": options})
        assert r.status_code == 422 and message in r.text, (options, r.text)
    # The patches: a zip of the timeline, its EDL and the patch clips.
    r = client.post("/v1/jobs", headers=a, json={"video": video, "audio": audio, "options": {
        "engine": "warp", "output_profile": "patch", "ranges": ["0.2-0.8"]}})
    done = _wait(client, a, r.json()["id"])
    assert done["state"] == "succeeded", done
    result = client.get(f"/v1/jobs/{done['id']}/result", headers=a)
    assert result.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(result.content)) as archive:
        names = sorted(n for n in archive.namelist() if not n.endswith("/"))
        timeline = otio.adapters.read_from_string(archive.read("edit.otio").decode())
    assert names[:2] == ["edit.edl", "edit.otio"] and len(names) == 3
    assert [c.media_reference.target_url for c in timeline.tracks[1].find_clips()] == \
        [names[2]]
    r = client.post("/v1/jobs", headers=a, json={
        "video": _upload(client, a, _transcode(talking_clip, tmp_path / "mjpeg.mov",
                                               vcodec="mjpeg", t=1.0)),
        "audio": audio, "options": {"output_profile": "match"}})
    failed = _wait(client, a, r.json()["id"])
    assert failed["state"] == "failed" and failed["error_code"] == "unsupported_format"
    assert "built for ProRes, DNxHR, H.264 and HEVC sources" in failed["error_message"]


def test_patches_per_changed_shot_rebuild_the_match_master(
        tmp_path: Path, dialogue: Dialogue, new_lines: tuple[Path, Path]) -> None:
    """The two-person dialogue (three shots) as a ProRes master; a re-take in the first
    shot and one in the last: two patches, each with a matte and its source timecode, on
    a timeline that OpenTimelineIO reads back; laid over the source, they give the match
    master."""
    source = _master(dialogue.path, tmp_path / "scene.mov",
                     {"vcodec": "prores_ks", "profile:v": 3, "pix_fmt": "yuv422p10le"},
                     "25", "01:00:00:00", seconds=9.0)
    args = ["--video", str(source), "--audio", str(new_lines[0]), "--engine", "warp",
            "--range", "1-2", "--range", "7-8"]
    timeline_path = tmp_path / "edit.otio"
    code, text = run_cli("dub", *args, "--output", str(timeline_path),
                         "--output-profile", "patch")
    assert code == 0, text
    code, text = run_cli("dub", *args, "--output", str(tmp_path / "master.mov"),
                         "--output-profile", "match")
    assert code == 0, text
    patches = sorted((tmp_path / "edit_patches").iterdir())
    assert [p.name[:8] for p in patches] == ["shot0000", "shot0002"]
    assert (tmp_path / "edit.edl").read_text().count("FROM CLIP:") == 2
    timeline = otio.adapters.read_from_file(str(timeline_path))
    clips = list(timeline.tracks[1].find_clips())
    assert [c.media_reference.target_url for c in clips] == \
        [f"edit_patches/{p.name}" for p in patches]
    layout = PlaneLayout.of("yuv422p10le", "bt709", False, 360)
    original = _planes(source, layout)
    master = _planes(tmp_path / "master.mov", layout)
    for clip, path in zip(clips, patches, strict=True):
        fmt = read_format(path)
        # Written from 10-bit samples; FFmpeg decodes ProRes 4444 at 12 bits.
        assert (fmt.codec, fmt.profile, fmt.pix_fmt, fmt.alpha) == \
            ("prores", "4444", "yuva444p12le", True)
        start = clip.source_range.start_time
        first = int(start.to_frames() - otio.opentime.from_timecode(
            "01:00:00:00", 25).to_frames())
        assert fmt.timecode == otio.opentime.to_timecode(start, 25)
        with av.open(str(path)) as container:
            frames = [np.stack([np.frombuffer(p, np.uint16).reshape(p.height, -1)[:, :p.width]
                                for p in f.planes]) for f in container.decode(video=0)]
        assert len(frames) == clip.source_range.duration.to_frames()
        worst = np.inf
        for offset, patch in enumerate(frames):
            k = first + offset
            alpha = patch[3].astype(np.float64) / 4095
            # Alpha over the source, in full-chroma samples, against the master.
            for plane in range(3):
                under = cv2.resize(original[k][plane], (640, 360),
                                   interpolation=cv2.INTER_NEAREST).astype(np.float64)
                wanted = cv2.resize(master[k][plane], (640, 360),
                                    interpolation=cv2.INTER_NEAREST).astype(np.float64)
                over = patch[plane] / 4 * alpha + under * (1 - alpha)
                changed = alpha > 0
                if changed.any():
                    worst = min(worst, _psnr(over[changed], wanted[changed]))
        print(f"{path.name}: {len(frames)} frames, patches over the source vs the master "
              f"{worst:.1f} dB where the matte is set")
        assert worst > 45  # measured 53.2 and 50.5 dB (ProRes 4444 and 422 HQ losses)


def test_a_prores_4444_master_keeps_its_alpha(tmp_path: Path, talking_clip: Path,
                                              new_voice: Path) -> None:
    source = tmp_path / "alpha.mov"
    clip = ffmpeg.input(str(talking_clip))
    picture = clip.video.filter("format", "yuva444p10le").filter(
        "geq", lum="lum(X,Y)", cb="cb(X,Y)", cr="cr(X,Y)", a="512+400*sin(X/40)")
    ffmpeg.output(picture, clip.audio, str(source), vcodec="prores_ks", t=1.0,
                  pix_fmt="yuva444p10le", acodec="pcm_s24le",
                  **{"profile:v": 4}).run(cmd=imageio_ffmpeg.get_ffmpeg_exe(),
                                          overwrite_output=True, quiet=True)
    before = read_format(source)
    assert (before.profile, before.alpha) == ("4444", True)
    output = tmp_path / "dubbed.mov"
    code, text = run_cli("dub", "--video", str(source), "--audio", str(new_voice),
                         "--output", str(output), "--engine", "warp",
                         "--output-profile", "match", "--replace-audio-stream", "0")
    assert code == 0, text
    after = read_format(output)
    assert (after.profile, after.alpha, after.chroma) == ("4444", True, "4:4:4")
    layout = PlaneLayout.of(before.pix_fmt, "bt709", False, before.height)
    original, dubbed = _planes(source, layout), _planes(output, layout)
    for a, b in zip(original, dubbed, strict=True):
        assert len(b) == 4
        # ProRes codes alpha losslessly, but FFmpeg decodes 4444 at 12 bits and its
        # encoders take 10: the matte comes back within half a 10-bit step (2 in 12 bits).
        assert np.abs(a[3].astype(int) - b[3].astype(int)).max() <= 2


@pytest.mark.parametrize(("name", "codec", "pix_fmt", "profile"), [
    ("h264.mp4", "libx264", "yuv422p10le", "High 4:2:2"),
    ("hevc.mov", "libx265", "yuv420p10le", "Main 10")])
def test_long_gop_10_bit_sources_come_back_in_their_own_codec(
        tmp_path: Path, talking_clip: Path, new_voice: Path, name: str, codec: str,
        pix_fmt: str, profile: str) -> None:
    clip = ffmpeg.input(str(talking_clip))
    source = tmp_path / name
    music = ffmpeg.input("sine=f=220:d=1", f="lavfi").audio
    ffmpeg.output(clip.video, clip.audio, music, str(source), vcodec=codec, pix_fmt=pix_fmt,
                  acodec="aac", t=1.0, **({"x265-params": "log-level=error"}
                                          if codec == "libx265" else {})).run(
        cmd=imageio_ffmpeg.get_ffmpeg_exe(), overwrite_output=True, quiet=True)
    output = tmp_path / f"dubbed{source.suffix}"
    code, text = run_cli("dub", "--video", str(source), "--audio", str(new_voice),
                         "--output", str(output), "--engine", "warp",
                         "--output-profile", "match", "--replace-audio-stream", "0")
    assert code == 0, text
    before, after = read_format(source), read_format(output)
    assert (after.codec, after.profile, after.pix_fmt, after.bit_depth) == \
        (before.codec, profile, pix_fmt, 10)
    assert _packets(output, 1) == _packets(source, 1)  # the second stream, copied
    assert len(_planes(output, PlaneLayout.of(pix_fmt, "bt709", False, 360))) == 25


def test_the_dialogue_replaces_a_stream_by_language_and_subtitles_ride_along(
        tmp_path: Path, talking_clip: Path, new_voice: Path) -> None:
    master = _master(talking_clip, tmp_path / "master.mov",
                     {"vcodec": "prores_ks", "profile:v": 1, "pix_fmt": "yuv422p10le"},
                     "25", "10:00:00:00", seconds=1.0)
    subtitles = tmp_path / "lines.srt"
    subtitles.write_text("1\n00:00:00,100 --> 00:00:00,900\nBonjour.\n")
    source = tmp_path / "with-subtitles.mov"
    streams = ffmpeg.input(str(master))
    ffmpeg.output(streams["v"], streams["a:0"], streams["a:1"], streams["a:2"],
                  ffmpeg.input(str(subtitles))["s"], str(source), c="copy",
                  **{"c:s": "mov_text", "metadata:s:s:0": "language=fra",
                     "metadata:s:a:0": "language=eng", "metadata:s:a:2": "language=spa"}
                  ).run(cmd=imageio_ffmpeg.get_ffmpeg_exe(), overwrite_output=True,
                        quiet=True)
    output = tmp_path / "dubbed.mov"
    code, text = run_cli("dub", "--video", str(source), "--audio", str(new_voice),
                         "--output", str(output), "--engine", "warp",
                         "--output-profile", "match", "--replace-audio-stream", "spa")
    assert code == 0, text
    assert _packets(output, 0) == _packets(source, 0)
    assert _packets(output, 2) != _packets(source, 2)  # the Spanish stream replaced
    with av.open(str(source)) as before, av.open(str(output)) as after:
        assert [dict(s.metadata).get("language") for s in after.streams.subtitles] == ["fra"]
        texts = [[bytes(p) for p in c.demux(c.streams.subtitles[0]) if p.size]
                 for c in (before, after)]
    assert texts[0] == texts[1]
    code, text = run_cli("dub", "--video", str(source), "--audio", str(new_voice),
                         "--output", str(tmp_path / "no.mov"), "--output-profile", "match",
                         "--replace-audio-stream", "jpn")
    assert code == 2 and "no audio stream of the source is tagged" in text, text


def test_a_review_copy_is_made_from_the_master(tmp_path: Path, talking_clip: Path,
                                               new_voice: Path) -> None:
    source = _master(talking_clip, tmp_path / "master.mov",
                     {"vcodec": "prores_ks", "profile:v": 1, "pix_fmt": "yuv422p10le"},
                     "25", "10:00:00:00", seconds=1.0)
    output, review = tmp_path / "dubbed.mov", tmp_path / "review.mp4"
    code, text = run_cli("dub", "--video", str(source), "--audio", str(new_voice),
                         "--output", str(output), "--engine", "warp", "--output-profile",
                         "match", "--dialogue-language", "fra", "--review-copy", str(review))
    assert code == 0, text
    copy = read_format(review)
    assert (copy.codec, copy.bit_depth, copy.chroma, len(copy.audio)) == \
        ("h264", 8, "4:2:0", 1)
    layout = PlaneLayout.of("yuv422p10le", "bt709", False, 360)
    master = [p[0] >> 2 for p in _planes(output, layout)]  # 10-bit luma as 8-bit
    with av.open(str(review)) as container:
        luma = [f.to_ndarray()[:360] for f in container.decode(video=0)]
    assert len(luma) == len(master)
    assert min(_psnr(a, b, 255.0) for a, b in zip(master, luma, strict=True)) > 35  # 43.1
    code, text = run_cli("dub", "--video", str(source), "--audio", str(new_voice),
                         "--output", str(tmp_path / "x.mp4"), "--review-copy",
                         str(tmp_path / "r.mp4"))
    assert code == 2 and "made from a 'match' master" in text


def test_a_cast_dub_delivers_a_master_too(tmp_path: Path, dialogue: Dialogue,
                                          new_lines: tuple[Path, Path]) -> None:
    source = _transcode(dialogue.path, tmp_path / "scene.mov", vcodec="prores_ks",
                        **{"profile:v": 3, "pix_fmt": "yuv422p10le", "timecode": "10:00:00:00"})
    output = tmp_path / "cast.mov"
    code, text = run_cli("dub", "--video", str(source), "--output", str(output),
                         "--cast", f"anna={new_lines[0]}", "--cast", f"ben={new_lines[1]}",
                         "--output-profile", "match", "--dialogue-language", "fra")
    assert code == 0, text
    before, after = read_format(source), read_format(output)
    for kept in ("codec", "profile", "pix_fmt", "bit_depth", "chroma", "rate", "timecode"):
        assert getattr(after, kept) == getattr(before, kept), kept
    assert [a.language for a in after.audio][-1] == "fra"  # the mixed lines, added
    assert probe_video(output).frame_count == probe_video(source).frame_count
    code, text = run_cli("dub", "--video", str(source), "--output", str(tmp_path / "c.mp4"),
                         "--cast", f"anna={new_lines[0]}", "--output-profile", "match")
    assert code == 2 and ".mov" in text, text  # the master's container, checked first
