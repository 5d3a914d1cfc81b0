"""The reference Wav2Lip inference run with a fixed box (`inference.py --box ...`), step for
step, as the yardstick for LipDub's CPU speed (benchmarks/bench_cpu.py). Written from the
published script's description, not copied: every frame read into memory with OpenCV,
the mel windows cut, each frame's box cropped and resized to 96x96, batches of 128 through
the unfused float32 network (torch's default threads), each output resized and pasted back
as a hard rectangle, frames written to an AVI (DIVX) with OpenCV, then FFmpeg muxing the
audio into the MP4 (libx264 at its default preset). No face detection: the box is given.

Its audio features are the reference's: librosa's load (resampled to 16 kHz), STFT and
Slaney mel filters (librosa is among the project's test dependencies: tests/test_mel.py
checks LipDub's features against it). The audio is read without a temporary WAV when it
already is one, as the original does.

    .venv/bin/python benchmarks/reference_wav2lip.py VIDEO AUDIO CHECKPOINT OUT.mp4 \
        --box x0,y0,x1,y1
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np
import torch

from lipdub.models.wav2lip import load_wav2lip_checkpoint

BATCH = 128  # the reference's wav2lip_batch_size
SIZE = 96
MEL_STEP = 16


def reference_mel(audio: Path) -> np.ndarray:
    """The reference's audio.py: load, pre-emphasis, STFT, mel, dB, normalise."""
    import librosa
    from scipy.signal import lfilter

    wav = librosa.core.load(str(audio), sr=16_000)[0]
    spectrum = np.abs(librosa.stft(y=lfilter([1, -0.97], [1], wav), n_fft=800,
                                   hop_length=200, win_length=800))
    basis = librosa.filters.mel(sr=16_000, n_fft=800, n_mels=80, fmin=55, fmax=7600)
    decibels = 20 * np.log10(np.maximum(1e-5, basis @ spectrum)) - 20
    return np.clip(8 * (decibels + 100) / 100 - 4, -4, 4)


def read_frames(video: Path) -> tuple[list[np.ndarray], float]:
    capture = cv2.VideoCapture(str(video))
    fps = capture.get(cv2.CAP_PROP_FPS)
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames, fps


def mel_chunks(mel: np.ndarray, fps: float) -> list[np.ndarray]:
    chunks, step, i = [], 80.0 / fps, 0
    while True:
        start = int(i * step)
        if start + MEL_STEP > mel.shape[1]:
            chunks.append(mel[:, -MEL_STEP:])
            return chunks
        chunks.append(mel[:, start:start + MEL_STEP])
        i += 1


def batches(frames: list[np.ndarray], chunks: list[np.ndarray], box: tuple[int, ...]):  # noqa: ANN201
    x0, y0, x1, y1 = box
    faces, mels, kept = [], [], []
    for i, chunk in enumerate(chunks):
        frame = frames[i % len(frames)].copy()
        faces.append(cv2.resize(frame[y0:y1, x0:x1], (SIZE, SIZE)))
        mels.append(chunk)
        kept.append(frame)
        if len(faces) == BATCH or i == len(chunks) - 1:
            face = np.asarray(faces)
            masked = face.copy()
            masked[:, SIZE // 2:] = 0
            yield (np.concatenate((masked, face), axis=3) / 255.0,
                   np.asarray(mels)[..., None], kept)
            faces, mels, kept = [], [], []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("video", type=Path)
    parser.add_argument("audio", type=Path)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--box", required=True, help="x0,y0,x1,y1")
    args = parser.parse_args()
    box = tuple(int(v) for v in args.box.split(","))
    started = time.perf_counter()
    frames, fps = read_frames(args.video)
    chunks = mel_chunks(reference_mel(args.audio), fps)
    model = load_wav2lip_checkpoint(args.checkpoint).eval()
    x0, y0, x1, y1 = box
    with tempfile.TemporaryDirectory() as tmp:
        avi = Path(tmp) / "result.avi"
        height, width = frames[0].shape[:2]
        writer = cv2.VideoWriter(str(avi), cv2.VideoWriter_fourcc(*"DIVX"), fps,
                                 (width, height))
        for faces, mels, kept in batches(frames, chunks, box):
            face_t = torch.FloatTensor(np.transpose(faces, (0, 3, 1, 2)))
            mel_t = torch.FloatTensor(np.transpose(mels, (0, 3, 1, 2)))
            with torch.no_grad():
                out = model(mel_t, face_t)
            out = out.cpu().numpy().transpose(0, 2, 3, 1) * 255.0
            for generated, frame in zip(out, kept, strict=True):
                frame[y0:y1, x0:x1] = cv2.resize(generated.astype(np.uint8),
                                                 (x1 - x0, y1 - y0))
                writer.write(frame)
        writer.release()
        subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-v", "error",
                        "-i", str(args.audio), "-i", str(avi), "-strict", "-2", "-q:v", "1",
                        str(args.output)], check=True)
    print(f"reference: {len(chunks)} frames in {time.perf_counter() - started:.1f} s "
          "(after imports)")


if __name__ == "__main__":
    main()
