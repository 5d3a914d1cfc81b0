"""The demo: build a talking clip from a real face photo and a speech-like track, then dub
it to a different speech-like track. Needs no weights and nothing from the network."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lipdub.samples.speech import SpeechSpec, speech_like, write_wav
from lipdub.samples.talking import ClipSpec, write_talking_clip


@dataclass(frozen=True)
class DemoInputs:
    video: Path
    audio: Path


def make_demo_inputs(folder: Path, seconds: float = 8.0, spec: ClipSpec | None = None,
                     ) -> DemoInputs:
    """source.mp4 speaks one track; new_voice.wav is another (different rhythm and pauses)."""
    folder.mkdir(parents=True, exist_ok=True)
    original = speech_like(SpeechSpec(seconds=seconds, seed=1, pitch_hz=150))
    new_voice = speech_like(SpeechSpec(seconds=seconds, seed=7, pitch_hz=120,
                                       pause_every_s=1.6, pause_s=0.6))
    video = write_talking_clip(folder / "source.mp4", spec or ClipSpec(), original)
    audio = folder / "new_voice.wav"
    write_wav(str(audio), new_voice)
    return DemoInputs(video=video, audio=audio)
