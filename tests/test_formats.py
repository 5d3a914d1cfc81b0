"""Studio masters read as an editor describes them (codec, profile, bit depth, chroma,
colour, scan, timecode, audio layout), reported with the dub, and interlaced footage refused
with what to do. Media made here with FFmpeg."""

from __future__ import annotations

from pathlib import Path

import ffmpeg
import imageio_ffmpeg
import pytest

from lipdub.media.formats import UnsupportedFormatError, check_progressive, read_format
from tests.test_cli_dub import run_cli
from tests.test_platform_api import _upload, _wait, platform  # noqa: F401 - a fixture


def _make(output: Path, video: dict, audio: list[tuple[str, str | None]], size: str,
          rate: str, seconds: float = 1.0, **options: object) -> Path:
    """testsrc2 picture + sine tones, one per (layout, language), encoded as asked."""
    picture = ffmpeg.input(f"testsrc2=s={size}:r={rate}:d={seconds}", f="lavfi").video
    picture = picture.filter("setparams", color_primaries="bt709", color_trc="bt709",
                             colorspace="bt709", range="tv")
    tones = [ffmpeg.input(f"sine=f={440 + 110 * i}:d={seconds}", f="lavfi").audio
             .filter("aformat", channel_layouts=layout) for i, (layout, _) in enumerate(audio)]
    tags = {f"metadata:s:a:{i}": f"language={language}"
            for i, (_, language) in enumerate(audio) if language}
    ffmpeg.output(picture, *tones, str(output), **video, **tags, **options).run(
        cmd=imageio_ffmpeg.get_ffmpeg_exe(), overwrite_output=True, quiet=True)
    return output


@pytest.fixture(scope="module")
def prores(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ProRes 422 HQ, 10-bit 4:2:2, 23.976, TC 01:00:00:00, BT.709, dialogue + M&E + 5.1."""
    return _make(tmp_path_factory.mktemp("masters") / "master.mov",
                 {"vcodec": "prores_ks", "profile:v": 3, "pix_fmt": "yuv422p10le",
                  "acodec": "pcm_s24le", "ar": 48_000},
                 [("stereo", "eng"), ("stereo", "fra"), ("5.1", "eng")], "640x360",
                 "24000/1001", timecode="01:00:00:00")


def test_a_prores_master_is_read_as_an_editor_describes_it(prores: Path) -> None:
    source = read_format(prores)
    assert (source.codec, source.profile, source.bit_depth, source.chroma) == \
        ("prores", "HQ", 10, "4:2:2")
    assert (source.rate, source.timecode, source.scan) == \
        ("24000/1001", "01:00:00:00", "progressive")
    assert source.colour == {"primaries": "bt709", "transfer": "bt709", "matrix": "bt709",
                             "range": "limited"}
    assert [(a.layout, a.channels, a.language) for a in source.audio] == \
        [("stereo", 2, "eng"), ("stereo", 2, "fra"), ("5.1", 6, "eng")]
    assert source.describe() == ("prores HQ 10-bit 4:2:2 640x360 @ 24000/1001, bt709, "
                                 "TC 01:00:00:00, audio: stereo (eng), stereo (fra), 5.1 (eng)")
    assert source.dropped_by_delivery() == [
        "prores HQ codec", "10-bit precision", "4:2:2 chroma", "start timecode 01:00:00:00",
        "2 of 3 audio streams"]
    assert source.to_dict()["interlaced"] is False


def test_dnxhr_in_mxf_with_drop_frame_timecode(tmp_path: Path) -> None:
    source = read_format(_make(
        tmp_path / "master.mxf", {"vcodec": "dnxhd", "profile:v": "dnxhr_hqx",
                                  "pix_fmt": "yuv422p10le", "acodec": "pcm_s24le",
                                  "ar": 48_000},
        [("mono", None)], "1280x720", "30000/1001", timecode="00:59:59;28"))
    assert (source.container, source.codec, source.profile, source.bit_depth,
            source.chroma) == ("mxf", "dnxhd", "DNXHR HQX", 10, "4:2:2")
    assert source.timecode == "00:59:59;28"  # drop-frame: the semicolon kept
    assert [a.layout for a in source.audio] == ["mono"]


def test_interlaced_footage_is_refused_with_what_to_do(tmp_path: Path,
                                                        new_voice: Path) -> None:
    video = _make(tmp_path / "interlaced.mp4",
                  {"vcodec": "libx264", "pix_fmt": "yuv420p", "flags": "+ildct+ilme",
                   "x264opts": "tff=1", "acodec": "aac"},
                  [("stereo", None)], "640x360", "25")
    source = read_format(video)
    assert source.interlaced and source.scan == "interlaced (top field first)"
    with pytest.raises(UnsupportedFormatError, match="LipDub dubs progressive footage"):
        check_progressive(video, source)
    output = tmp_path / "out.mp4"
    code, text = run_cli("dub", "--video", str(video), "--audio", str(new_voice),
                         "--output", str(output))
    assert code == 2 and "is interlaced (top field first)" in text and "bwdif" in text
    assert not output.exists()


def test_the_dub_reports_the_source_and_what_its_output_drops(
        prores: Path, new_voice: Path, tmp_path: Path) -> None:
    code, text = run_cli("dub", "--video", str(prores), "--audio", str(new_voice),
                         "--output", str(tmp_path / "out.mp4"), "--engine", "warp")
    assert code == 0, text
    assert "source: prores HQ 10-bit 4:2:2 640x360 @ 24000/1001" in text
    assert "does not keep the source's prores HQ codec, 10-bit precision, 4:2:2 chroma, " \
        "start timecode 01:00:00:00, 2 of 3 audio streams" in " ".join(text.split())


def test_a_job_records_the_source_format_and_refuses_interlaced_footage(
        platform, prores: Path, new_voice: Path, tmp_path: Path) -> None:  # noqa: F811
    client, a, _, _ = platform
    audio = _upload(client, a, new_voice)
    r = client.post("/v1/jobs", headers=a, json={
        "video": _upload(client, a, prores), "audio": audio, "options": {"engine": "warp"}})
    done = _wait(client, a, r.json()["id"])
    assert done["state"] == "succeeded", done
    source = done["source_format"]
    assert (source["codec"], source["profile"], source["bit_depth"], source["chroma"],
            source["timecode"], len(source["audio"])) == \
        ("prores", "HQ", 10, "4:2:2", "01:00:00:00", 3)
    assert done["timings"]["source_format"].startswith("prores HQ 10-bit 4:2:2")
    assert any("does not keep" in w for w in done["timings"]["warnings"])
    interlaced = _make(tmp_path / "interlaced.mp4",
                       {"vcodec": "libx264", "pix_fmt": "yuv420p", "flags": "+ildct+ilme",
                        "x264opts": "tff=1", "acodec": "aac"},
                       [("stereo", None)], "640x360", "25")
    r = client.post("/v1/jobs", headers=a, json={
        "video": _upload(client, a, interlaced), "audio": audio})
    failed = _wait(client, a, r.json()["id"])
    assert failed["state"] == "failed" and failed["error_code"] == "unsupported_format"
    assert "interlaced" in failed["error_message"] and "faces" not in failed["stages_done"]
