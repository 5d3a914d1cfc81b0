"""The media work of a job: job options -> engine and pipeline call (the same core the CLI
uses)."""

from __future__ import annotations

from pathlib import Path

from lipdub.config import get_settings
from lipdub.engines.registry import build_engine
from lipdub.faces.select import FaceSelector
from lipdub.pipeline import dub
from lipdub.progress import ProgressSink
from lipdub.sync import SyncMode


def dub_file(video: Path, audio: Path, output: Path, options: dict,
             progress: ProgressSink) -> dict:
    settings = get_settings()
    engine = build_engine(options.get("engine", "auto"), settings.wav2lip_checkpoint,
                          settings.device, settings.wav2lip_batch_size)
    report = dub(video, audio, output, engine, SyncMode(options.get("sync_mode", "cut_off")),
                 FaceSelector.parse(options.get("face", "largest")), settings.detect_every,
                 progress)
    return {"seconds_total": report.seconds_total, "output_frames": report.output_frames,
            "face_frames": report.face_frames, "passthrough_frames": report.passthrough_frames,
            "stages": {k: {"seconds": v.seconds, "frames": v.frames}
                       for k, v in report.stages.items()},
            "warnings": report.warnings}
