"""Sample media built in code once per test session (real face photo, speech-like audio)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("GLOG_minloglevel", "2")
# QC measures every dub after it is written (about 2 s for a test clip): tests about
# something else skip it; the QC, review, console and platform tests switch it on.
os.environ.setdefault("LIPDUB_QC_ENABLED", "false")

from lipdub.samples.dialogue import (  # noqa: E402
    Dialogue,
    DialogueSpec,
    dialogue_lines,
    write_dialogue,
)
from lipdub.samples.speech import SpeechSpec, speech_like, write_wav  # noqa: E402
from lipdub.samples.talking import ClipSpec, write_talking_clip  # noqa: E402
from tests.http_helpers import Site, free_port  # noqa: E402

SMALL = ClipSpec(width=640, height=360, face_height=150, face_centre=(0.5, 0.42))


class Samples:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._cache: dict[str, Path] = {}

    def audio(self, name: str, seconds: float, seed: int, **kw) -> Path:
        key = f"audio-{name}"
        if key not in self._cache:
            path = self.root / f"{name}.wav"
            write_wav(str(path), speech_like(SpeechSpec(seconds=seconds, seed=seed, **kw)))
            self._cache[key] = path
        return self._cache[key]

    def clip(self, name: str, seconds: float, seed: int = 1, spec: ClipSpec = SMALL) -> Path:
        key = f"clip-{name}"
        if key not in self._cache:
            audio = speech_like(SpeechSpec(seconds=seconds, seed=seed))
            self._cache[key] = write_talking_clip(self.root / f"{name}.mp4", spec, audio)
        return self._cache[key]


@pytest.fixture(scope="session")
def samples(tmp_path_factory: pytest.TempPathFactory) -> Samples:
    return Samples(tmp_path_factory.mktemp("samples"))


@pytest.fixture(scope="session")
def talking_clip(samples: Samples) -> Path:
    """4 s, 640x360 @ 25 fps, the face speaking the 'original' track (seed 1)."""
    return samples.clip("talking", 4.0, seed=1)


@pytest.fixture(scope="session")
def new_voice(samples: Samples) -> Path:
    """A different speech-like track (seed 7), 5 s: longer than the clip."""
    return samples.audio("new_voice", 5.0, seed=7, pitch_hz=120, pause_every_s=1.4,
                         pause_s=0.6)


@pytest.fixture(scope="session")
def short_voice(samples: Samples) -> Path:
    """2.5 s: shorter than the clip."""
    return samples.audio("short_voice", 2.5, seed=11)


@pytest.fixture(scope="session")
def dialogue(samples: Samples) -> Dialogue:
    """Two people taking six turns (9 s, 640x360), with cuts at 3.0 s and 6.2 s."""
    return write_dialogue(samples.root / "dialogue.mp4")


@pytest.fixture(scope="session")
def new_lines(samples: Samples) -> tuple[Path, Path]:
    """The dialogue's two characters' new lines (other words on the same turns), as
    stems: the left person's, then the right person's."""
    left, right, _ = dialogue_lines(DialogueSpec(seed=11))
    paths = (samples.root / "line-left.wav", samples.root / "line-right.wav")
    for path, line in zip(paths, (left, right), strict=True):
        write_wav(str(path), line)
    return paths


@pytest.fixture(scope="session")
def random_wav2lip_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from lipdub.models.wav2lip import Wav2Lip, save_wav2lip_checkpoint

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "wav2lip_random.pth"
    save_wav2lip_checkpoint(Wav2Lip(), path)
    return path


@pytest.fixture(scope="session")
def exported_repository(random_wav2lip_checkpoint: Path,
                        tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """A copy of model_repository/ with the test's Wav2Lip exported into it (the program
    for the torch backend, and the ONNX model): (repository, ExportReport)."""
    import shutil

    from lipdub.inference.export import export_wav2lip

    repository = tmp_path_factory.mktemp("models") / "model_repository"
    shutil.copytree(Path(__file__).parent.parent / "model_repository", repository)
    return repository, export_wav2lip(random_wav2lip_checkpoint, repository)


def assert_no_partial_files(folder: Path) -> None:
    leftovers = [p.name for p in folder.iterdir() if ".partial" in p.name]
    assert not leftovers, f"half-written files left behind: {leftovers}"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A real S3 server process on loopback (moto's), with a bucket "dubs": its endpoint."""
    import boto3
    import httpx
    from moto.server import ThreadedMotoServer

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    # moto keeps one store per process, whatever the server: start every test empty.
    httpx.post(f"{endpoint}/moto-api/reset")
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="dubs")
    yield endpoint
    server.stop()


@pytest.fixture
def site() -> Iterator[Site]:
    """A local HTTP server with scripted answers (see tests.http_helpers.Site)."""
    s = Site()
    yield s
    s.server.shutdown()


def pytest_terminal_summary(terminalreporter) -> None:  # noqa: ANN001 - pytest's reporter
    """The fault scenarios' table, when any ran."""
    from dataclasses import asdict

    from tests.faults.harness import RECORDED, table

    if RECORDED:
        terminalreporter.write_sep("=", "reliability")
        terminalreporter.write_line(table([asdict(s) for s in RECORDED]))


# Steps for a restorer that passes the quality gate on the generated person (measured:
# see test_restore.py), trained once a session and shared by every test that applies one.
RESTORE_STEPS = 250


@pytest.fixture(scope="session")
def trained_identity(samples: Samples, tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201 - IdentityVersion
    """One generated person's restorer (8 s of footage, 128 px, a few CPU minutes)."""
    import torch

    from lipdub.restore.identity import IdentityStore
    from lipdub.restore.identity_training import train_identity
    from lipdub.restore.train import TrainConfig

    torch.manual_seed(0)
    store = IdentityStore(tmp_path_factory.mktemp("trained-identity"))
    return train_identity([samples.clip("person", 8.0, seed=2)], "eileen", store,
                          TrainConfig(steps=RESTORE_STEPS, batch_size=4))


@pytest.fixture(scope="session")
def rejected_identity(samples: Samples, tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201 - IdentityVersion
    """The same person after one training step: the input unchanged, so the quality gate
    rejects it (a real rejected version, for the tests of what rejection does)."""
    from lipdub.restore.identity import IdentityStore
    from lipdub.restore.identity_training import train_identity
    from lipdub.restore.train import TrainConfig

    store = IdentityStore(tmp_path_factory.mktemp("rejected-identity"))
    version = train_identity([samples.clip("person", 8.0, seed=2)], "brief", store,
                             TrainConfig(steps=1, batch_size=4))
    assert version.rejection, version.info["evaluation"]
    return version
