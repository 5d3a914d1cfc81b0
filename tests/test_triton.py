"""The serving layer against a real Triton server (the binary bundled in nvidia-pytriton,
started here on a copy of model_repository/ with weights exported from a checkpoint the test
creates): the repository's configs match the clients, the exported ONNX matches PyTorch,
Wav2Lip and an identity restorer (SOVQAE) over gRPC and HTTP equal the local backend, a
whole dub through Triton equals the same dub run locally, identity models load on first use
and the least recently used is unloaded over the resident bound, dynamic batching merges
concurrent requests, and a missing server or model or a wrong request gives a clear
error."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from google.protobuf import json_format, text_format
from tritonclient.grpc import model_config_pb2

from lipdub.config import Settings
from lipdub.engines.registry import build_engine
from lipdub.inference.backends import sovqae_restorer
from lipdub.inference.contract import CONTRACTS, TORCH_BACKEND, WAV2LIP
from lipdub.inference.errors import InferenceFailedError, InferenceUnavailableError
from lipdub.inference.export import example_batch, sovqae_package
from lipdub.inference.local import LocalPredictor
from lipdub.models.wav2lip import load_wav2lip_checkpoint
from lipdub.pipeline import dub
from lipdub.restore.model import SOVQAE, SOVQAEConfig
from lipdub.restore.stage import LocalSovqae
from lipdub_model_server.triton_client import TritonPredictor, triton_config
from lipdub_model_server.triton_server import TritonServer
from tests.http_helpers import free_port
from tests.media_helpers import read_frames

REPOSITORY = Path(__file__).parent.parent / "model_repository"
TOLERANCE = 1e-5  # outputs in [0, 1]; the same float32 network on both sides


@pytest.fixture(scope="module")
def exported(exported_repository):  # noqa: ANN001, ANN201
    return exported_repository


@pytest.fixture(scope="module")
def triton(exported, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TritonServer]:
    repository, _ = exported
    server = TritonServer(repository, http_port=free_port(), grpc_port=free_port(),
                          metrics_port=free_port(), load=[WAV2LIP.name])
    server.start(log=tmp_path_factory.mktemp("triton") / "server.log")
    yield server
    server.stop()


def small_sovqae(seed: int) -> SOVQAE:
    """A small restorer whose codebook is initialised (one training-mode pass)."""
    torch.manual_seed(seed)
    model = SOVQAE(SOVQAEConfig(resolution=64, latent_size=16, codebook_size=32))
    model.train()(torch.rand(8, 3, 64, 64))
    return model.eval()


def spec_of(triton: TritonServer, protocol: str) -> str:
    return (f"triton://{triton.grpc_url}" if protocol == "grpc"
            else f"triton+http://{triton.host}:{triton.http_port}")


def last_inferences(triton: TritonServer) -> dict[str, int]:
    """Every loaded model, with when it last served (ms; 0: never)."""
    import tritonclient.grpc as grpc

    stats = grpc.InferenceServerClient(triton.grpc_url).get_inference_statistics()
    return {m.name: m.last_inference for m in stats.model_stats}


def loaded_models(triton: TritonServer) -> set[str]:
    return set(last_inferences(triton))


@pytest.fixture(scope="module")
def local(random_wav2lip_checkpoint: Path) -> LocalPredictor:
    return LocalPredictor(load_wav2lip_checkpoint(random_wav2lip_checkpoint), "cpu")


def test_every_config_parses_and_matches_its_contract() -> None:
    configs = sorted(REPOSITORY.glob("*/config.pbtxt"))
    assert {p.parent.name for p in configs} == set(CONTRACTS)
    types = {"FP32": model_config_pb2.TYPE_FP32}
    for path in configs:
        config = text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())
        contract = CONTRACTS[config.name]
        assert config.name == path.parent.name
        assert config.max_batch_size == contract.max_batch_size
        for declared, wanted in ((config.input, contract.inputs),
                                 (config.output, contract.outputs)):
            assert [(t.name, tuple(t.dims), t.data_type) for t in declared] == [
                (t.name, t.dims, types[t.datatype]) for t in wanted], path
        assert config.dynamic_batching.max_queue_delay_microseconds > 0


def test_identity_model_configs_parse_and_match_their_contract() -> None:
    """Identity restorers are loaded with a config the client writes: it must be a valid
    Triton ModelConfig naming the contract's tensors."""
    contract, package = sovqae_package(small_sovqae(0))
    config = json_format.ParseDict(triton_config(contract), model_config_pb2.ModelConfig())
    assert config.name == contract.name and config.backend == TORCH_BACKEND
    assert [(t.name, tuple(t.dims)) for t in config.input] == [("crops", (3, 64, 64))]
    assert [(t.name, tuple(t.dims)) for t in config.output] == [("restored", (3, 64, 64))]
    assert config.max_batch_size == contract.max_batch_size
    assert set(package.files) == {"model.pt2"}
    # The name is the weights' digest: the same weights, the same model; others differ.
    assert sovqae_package(small_sovqae(0))[0].name == contract.name
    assert sovqae_package(small_sovqae(1))[0].name != contract.name


def test_exported_onnx_matches_pytorch(exported) -> None:
    repository, report = exported
    assert report.onnx_max_abs_diff is not None and report.onnx_max_abs_diff < 1e-4
    graph = onnx.load(str(report.onnx), load_external_data=False).graph
    assert [i.name for i in graph.input] == [t.name for t in WAV2LIP.inputs]
    assert [o.name for o in graph.output] == [t.name for t in WAV2LIP.outputs]


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_triton_equals_the_local_backend(triton: TritonServer, local: LocalPredictor,
                                         protocol: str) -> None:
    spec = (f"triton://{triton.grpc_url}" if protocol == "grpc"
            else f"triton+http://{triton.host}:{triton.http_port}")
    remote = TritonPredictor(spec, WAV2LIP)
    for batch in (1, 7, 16):
        mel, faces = example_batch(WAV2LIP, batch, seed=batch)
        got, want = remote(mel, faces), local(mel, faces)
        assert got.shape == (batch, 3, 96, 96)
        assert np.abs(got - want).max() < TOLERANCE


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_an_identity_restorer_through_triton_equals_the_local_one(triton: TritonServer,
                                                                 protocol: str) -> None:
    model = small_sovqae({"grpc": 11, "http": 12}[protocol])
    contract, package = sovqae_package(model)
    assert contract.name not in loaded_models(triton)
    remote = TritonPredictor(spec_of(triton, protocol), contract, package)
    crops = np.random.default_rng(0).random((5, 3, 64, 64), dtype=np.float32)
    got, want = remote(crops), LocalSovqae(model)(crops)
    assert contract.name in loaded_models(triton)  # loaded on first use
    assert got.shape == (5, 3, 64, 64)
    assert np.abs(got - want).max() < TOLERANCE


def test_identity_models_over_the_resident_bound_are_unloaded_least_recent_first(
        triton: TritonServer) -> None:
    spec = f"triton://{triton.grpc_url}"
    crops = np.random.default_rng(1).random((2, 3, 64, 64), dtype=np.float32)
    predictors = {}
    for seed in (20, 21, 22):
        contract, package = sovqae_package(small_sovqae(seed))
        predictors[seed] = TritonPredictor(spec, contract, replace(package, resident=2))
    family = next(iter(predictors.values())).package.family
    name = {seed: p.contract.name for seed, p in predictors.items()}

    def resident() -> set[str]:
        return {n for n in loaded_models(triton) if n.startswith(family)}

    def use(seed: int) -> np.ndarray:
        """Infer, then wait until Triton's statistics (the order of eviction) record it:
        the server may answer before it updates them."""
        before = last_inferences(triton).get(name[seed], 0)
        got = predictors[seed](crops)
        deadline = time.monotonic() + 10
        while last_inferences(triton).get(name[seed], 0) <= before:
            assert time.monotonic() < deadline, f"no statistics for {name[seed]}"
            time.sleep(0.01)
        return got

    for seed in (20, 21):
        use(seed)
    assert resident() == {name[20], name[21]}  # earlier tests' models made room
    use(20)  # 21 is now the least recently used
    use(22)
    assert resident() == {name[20], name[22]}
    assert WAV2LIP.name in loaded_models(triton)  # repository models are not counted
    # An unloaded model is loaded again when used (another worker may have unloaded it).
    got = use(21)
    assert np.abs(got - LocalSovqae(small_sovqae(21))(crops)).max() < TOLERANCE
    assert resident() == {name[21], name[22]}


def test_dynamic_batching_merges_concurrent_requests(triton: TritonServer) -> None:
    import tritonclient.grpc as grpc

    remote = TritonPredictor(f"triton://{triton.grpc_url}", WAV2LIP)
    client = grpc.InferenceServerClient(triton.grpc_url)

    def counts() -> tuple[int, int]:
        stats = client.get_inference_statistics(WAV2LIP.name).model_stats[0]
        return stats.inference_count, stats.execution_count

    before = counts()
    mel, faces = example_batch(WAV2LIP, 2)
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda _: remote(mel, faces), range(32)))
    inferences, executions = (a - b for a, b in zip(counts(), before, strict=True))
    print(f"{inferences} items in {executions} executions")
    assert inferences == 64 and executions < 32  # requests were merged


def test_a_whole_dub_through_triton_equals_the_local_dub(triton: TritonServer,
                                                         random_wav2lip_checkpoint: Path,
                                                         talking_clip: Path,
                                                         short_voice: Path,
                                                         tmp_path: Path) -> None:
    """Wav2Lip and the identity restorer both run on the server."""
    outputs = {}
    for backend in ("local", f"triton://{triton.grpc_url}"):
        # float32 locally, as the server computes it (auto would pick bfloat16 here)
        engine = build_engine("wav2lip", random_wav2lip_checkpoint, "cpu", 16, backend,
                              cpu_runtime="torch")
        restorer = sovqae_restorer(backend, small_sovqae(30), "cpu", 16, resident=4)
        out = tmp_path / f"{backend.split(':')[0]}.mp4"
        dub(talking_clip, short_voice, out, engine, restorer=restorer)
        engine.close()
        outputs[backend] = read_frames(out)
    local_frames, triton_frames = outputs.values()
    assert len(local_frames) == len(triton_frames) > 0
    diff = np.abs(np.stack(local_frames).astype(int) - np.stack(triton_frames).astype(int))
    print(f"decoded frames: max diff {diff.max()}, mean {diff.mean():.5f}")
    assert diff.max() <= 2 and diff.mean() < 0.01  # the same pixels, up to rounding


def test_errors_are_clear_and_specific(triton: TritonServer) -> None:
    down = TritonPredictor(f"triton://127.0.0.1:{free_port()}", WAV2LIP, attempts=2,
                           first_wait_s=0.05)
    mel, faces = example_batch(WAV2LIP, 1)
    with pytest.raises(InferenceUnavailableError, match="could not serve 'wav2lip'"):
        down(mel, faces)
    missing = TritonPredictor(f"triton://{triton.grpc_url}",
                              replace(WAV2LIP, name="no_such_model"), attempts=2,
                              first_wait_s=0.05)
    with pytest.raises(InferenceUnavailableError, match="no_such_model"):
        missing(mel, faces)
    remote = TritonPredictor(f"triton://{triton.grpc_url}", WAV2LIP)
    with pytest.raises(InferenceFailedError, match="refused"):
        remote(mel[:, :, :40], faces)  # half the mel window
    with pytest.raises(InferenceFailedError, match="not a Triton address"):
        TritonPredictor("http://example.com", WAV2LIP)


def test_settings_choose_the_backend(triton: TritonServer) -> None:
    """`LIPDUB_INFERENCE` switches the engine's backend; `auto` needs no local weights when
    a server holds them."""
    settings = Settings(inference=f"triton://{triton.grpc_url}")
    engine = build_engine("auto", None, "cpu", 16, settings.inference)
    assert engine.name == "wav2lip"
    engine.close()
