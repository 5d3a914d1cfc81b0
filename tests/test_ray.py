"""The Ray Serve alternative against a real Ray Serve application (a local Ray instance
started for the module on the exported model repository): Wav2Lip and identity restorers
give the same outputs as the local backend, restorers are uploaded on first use and reloaded
when the replica's bound unloaded them, a whole dub through Ray equals the local dub, and
failures give the same clear errors as Triton's."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from lipdub.engines.registry import build_engine
from lipdub.inference.backends import remote_predictor, sovqae_restorer
from lipdub.inference.contract import WAV2LIP
from lipdub.inference.errors import InferenceFailedError, InferenceUnavailableError
from lipdub.inference.export import example_batch, sovqae_package
from lipdub.inference.local import LocalPredictor
from lipdub.models.wav2lip import load_wav2lip_checkpoint
from lipdub.pipeline import dub
from lipdub.restore.stage import LocalSovqae
from lipdub_model_server.ray_client import RayPredictor
from lipdub_model_server.ray_process import RayServeProcess
from tests.http_helpers import free_port
from tests.media_helpers import read_frames
from tests.test_triton import TOLERANCE, small_sovqae

RESIDENT = 3  # per replica, Wav2Lip included


@pytest.fixture(scope="module")
def ray_app(exported_repository, tmp_path_factory: pytest.TempPathFactory,  # noqa: ANN001
            ) -> Iterator[RayServeProcess]:
    repository, _ = exported_repository
    server = RayServeProcess(repository, port=free_port(), resident=RESIDENT)
    server.start(log=tmp_path_factory.mktemp("ray") / "ray.log")
    yield server
    server.stop()


def test_wav2lip_through_ray_equals_the_local_backend(ray_app: RayServeProcess,
                                                      random_wav2lip_checkpoint: Path) -> None:
    remote = remote_predictor(ray_app.spec, WAV2LIP)  # chosen by its scheme
    assert isinstance(remote, RayPredictor)
    local = LocalPredictor(load_wav2lip_checkpoint(random_wav2lip_checkpoint), "cpu")
    for batch in (1, 7, 16):
        mel, faces = example_batch(WAV2LIP, batch, seed=batch)
        got = remote(mel, faces)
        assert got.shape == (batch, 3, 96, 96)
        assert np.abs(got - local(mel, faces)).max() < TOLERANCE


def test_identity_restorers_are_uploaded_on_first_use_and_survive_the_bound(
        ray_app: RayServeProcess) -> None:
    """More identities than the replica keeps: each is uploaded once, and one unloaded by
    the bound is loaded again from its stored files when used."""
    crops = np.random.default_rng(3).random((4, 3, 64, 64), dtype=np.float32)
    models = {seed: small_sovqae(seed) for seed in (40, 41, 42, 43)}
    for _ in range(2):  # the second round meets models the bound unloaded
        for model in models.values():
            contract, package = sovqae_package(model)
            remote = RayPredictor(ray_app.spec, contract, replace(package, resident=RESIDENT))
            got = remote(crops)
            assert np.abs(got - LocalSovqae(model)(crops)).max() < TOLERANCE


def test_a_whole_dub_through_ray_equals_the_local_dub(ray_app: RayServeProcess,
                                                      random_wav2lip_checkpoint: Path,
                                                      talking_clip: Path, short_voice: Path,
                                                      tmp_path: Path) -> None:
    frames = {}
    for backend in ("local", ray_app.spec):
        # float32 locally, as the server computes it (auto would pick bfloat16 here)
        engine = build_engine("wav2lip", random_wav2lip_checkpoint, "cpu", 16, backend,
                              cpu_runtime="torch")
        restorer = sovqae_restorer(backend, small_sovqae(30), "cpu", 16, resident=RESIDENT)
        out = tmp_path / f"{backend.split(':')[0]}.mp4"
        dub(talking_clip, short_voice, out, engine, restorer=restorer)
        engine.close()
        frames[backend] = np.stack(read_frames(out)).astype(int)
    local_frames, ray_frames = frames.values()
    assert local_frames.shape == ray_frames.shape
    diff = np.abs(local_frames - ray_frames)
    print(f"decoded frames: max diff {diff.max()}, mean {diff.mean():.5f}")
    assert diff.max() <= 2 and diff.mean() < 0.01  # the same pixels, up to rounding


def test_errors_are_clear_and_specific(ray_app: RayServeProcess) -> None:
    mel, faces = example_batch(WAV2LIP, 1)
    down = RayPredictor(f"ray+http://127.0.0.1:{free_port()}", WAV2LIP, attempts=2,
                        first_wait_s=0.05)
    with pytest.raises(InferenceUnavailableError, match="could not serve 'wav2lip'"):
        down(mel, faces)
    missing = RayPredictor(ray_app.spec, replace(WAV2LIP, name="no_such_model"), attempts=2,
                           first_wait_s=0.05)
    with pytest.raises(InferenceUnavailableError, match="no_such_model"):
        missing(mel, faces)
    remote = RayPredictor(ray_app.spec, WAV2LIP)
    with pytest.raises(InferenceFailedError, match="refused"):
        remote(mel[:, :, :40], faces)  # half the mel window
    # A refused request does not spoil the requests batched with it.
    assert remote(mel, faces).shape == (1, 3, 96, 96)
    with pytest.raises(InferenceFailedError, match="not a Ray Serve address"):
        RayPredictor("http://example.com", WAV2LIP)
