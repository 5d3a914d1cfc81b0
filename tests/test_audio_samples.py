"""A voice track decoded to disk and read a slice at a time gives exactly the features the
whole track in memory gives (so a film's segment needs only its own minute of audio)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lipdub.audio.load import load_mono_16k
from lipdub.audio.mel import mel_columns, mel_frame_count, wav2lip_mel
from lipdub.audio.samples import decoded_once, decoded_samples
from lipdub.engines.warp.articulation import articulation_track
from lipdub.errors import EmptyMediaError
from lipdub.samples.speech import SpeechSpec, speech_like, write_wav


@pytest.fixture(scope="module")
def voice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # 44.1 kHz, so decoding resamples (the chunked file must match the one-piece array).
    path = tmp_path_factory.mktemp("voice") / "voice.wav"
    write_wav(str(path), speech_like(SpeechSpec(seconds=75.0, seed=5, sample_rate=44_100)),
              sample_rate=44_100)
    return path


def test_decoded_samples_equal_the_track_in_memory_and_are_removed_after(
        voice: Path, tmp_path: Path) -> None:
    whole = load_mono_16k(voice)
    with decoded_samples(voice, tmp_path) as samples:
        assert len(samples) == len(whole)
        assert np.array_equal(samples[:], whole)
        for a, b in [(0, 1), (12_345, 67_890), (len(whole) - 5, len(whole) + 100),
                     (-10, len(whole))]:
            assert np.array_equal(samples[a:b], whole[a:b])
        assert list(tmp_path.iterdir()) == [samples.path]
    assert list(tmp_path.iterdir()) == []


def test_features_read_slice_by_slice_equal_the_whole_tracks(voice: Path) -> None:
    whole = load_mono_16k(voice)
    with decoded_samples(voice) as samples:
        columns = mel_frame_count(len(whole))
        reference = wav2lip_mel(whole)
        for first, last in [(0, 16), (2_000, 2_016), (columns - 16, columns)]:
            assert np.array_equal(mel_columns(samples, first, last),
                                  reference[:, first:last])
        on_disk = articulation_track(samples, 25.0, 1_900)
        in_memory = articulation_track(whole, 25.0, 1_900)
        assert np.array_equal(on_disk.openness, in_memory.openness)
        assert np.array_equal(on_disk.width, in_memory.width)
        assert on_disk.openness.max() > 0.5  # speech opens the mouth: not an empty track


def test_a_track_with_no_audio_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    empty = tmp_path / "empty.wav"
    write_wav(str(empty), np.zeros(10, dtype=np.float32))
    folder = tmp_path / "work"
    folder.mkdir()
    with pytest.raises(EmptyMediaError, match="no usable audio"), \
            decoded_samples(empty, folder):
        pass
    copy = folder / "empty-copy.wav"
    copy.write_bytes(empty.read_bytes())
    with pytest.raises(EmptyMediaError, match="no usable audio"):
        decoded_once(copy)
    assert list(folder.iterdir()) == [copy]  # no decoded file, not even a partial one


def test_a_jobs_copy_of_the_track_is_decoded_once_and_reused(
        voice: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy = tmp_path / "voice.wav"
    copy.write_bytes(voice.read_bytes())
    first = decoded_once(copy)
    assert np.array_equal(first[:], load_mono_16k(voice))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["voice.wav", "voice.wav.16k.f32"]

    def no_decoding(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("decoded a second time")

    monkeypatch.setattr("lipdub.audio.samples.iter_audio", no_decoding)
    again = decoded_once(copy)  # a second segment on this worker: the file as it is
    assert again.path == first.path and len(again) == len(first)
    assert np.array_equal(again[1_000:2_000], first[1_000:2_000])
