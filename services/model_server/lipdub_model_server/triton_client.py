"""The workers' side of Triton: a Predictor (lipdub.inference) that sends a render batch to
a Triton server over gRPC (`triton://host:8001`) or HTTP (`triton+http://host:8000`).

- The model is loaded on the server if it is not yet (explicit model control), once. A
  model that is not in the server's repository (an identity restorer) is loaded with its
  config and files in the request; at most `package.resident` models of its family stay
  loaded, the one whose last inference is oldest (Triton's statistics, so the order is
  the same for every worker sharing the server) unloaded first. A worker whose model was
  unloaded by another loads it again: the next request's "unknown model" is transient.
- Transient failures (server down or restarting, model loading) are retried with backoff,
  then reported as InferenceUnavailableError, which the job runner treats as a passing
  fault (the stage is retried later; the job fails as inference_unavailable only after
  the last try). A request the server refuses (wrong shapes) is InferenceFailedError.
- Metrics and retries: lipdub_model_server.remote."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import numpy as np

from lipdub.inference.contract import TORCH_BACKEND, ModelContract, ModelPackage
from lipdub.inference.errors import InferenceFailedError
from lipdub.inference.metrics import UNLOADS
from lipdub_model_server.remote import (
    Refused,
    RemotePredictor,
    Transient,
    looks_like_connection_error,
)

# gRPC status names and HTTP codes meaning "not now" rather than "never".
_TRANSIENT = {"StatusCode.UNAVAILABLE", "StatusCode.DEADLINE_EXCEEDED",
              "StatusCode.RESOURCE_EXHAUSTED", "503", "504", "429"}
# Messages meaning the model is not (or no longer) loaded: load it again and retry.
_RELOAD = ("unknown model", "failed to load", "is not ready", "is not found")


class TritonPredictor(RemotePredictor):
    def __init__(self, spec: str, contract: ModelContract, package: ModelPackage | None = None,
                 timeout_s: float = 60.0, attempts: int = 4, first_wait_s: float = 0.5) -> None:
        parts = urlsplit(spec)
        if parts.scheme not in ("triton", "triton+http") or not parts.hostname:
            raise InferenceFailedError(f"'{spec}' is not a Triton address.",
                                       "Use triton://host:8001 (gRPC) or "
                                       "triton+http://host:8000.")
        self.http = parts.scheme == "triton+http"
        self.label = "triton-http" if self.http else "triton-grpc"
        address = f"{parts.hostname}:{parts.port or (8000 if self.http else 8001)}"
        super().__init__(address, contract, package, attempts, first_wait_s)
        self.timeout_s = timeout_s
        if self.http:
            import tritonclient.http as client
        else:
            import tritonclient.grpc as client
        self._api = client
        self._local = threading.local()  # the HTTP client (gevent) is per thread

    @property
    def _client(self):  # noqa: ANN202 - a tritonclient InferenceServerClient
        client = getattr(self._local, "client", None)
        if client is None:
            if self.http:
                client = self._api.InferenceServerClient(
                    self.address, connection_timeout=self.timeout_s,
                    network_timeout=self.timeout_s)
            else:
                client = self._api.InferenceServerClient(self.address)
            self._local.client = client
        return client

    def make_ready(self) -> None:
        with _classified():
            self._make_ready()

    def _make_ready(self) -> None:
        if not self._client.is_server_live():
            raise Transient("server not live")
        name = self.contract.name
        if self._client.is_model_ready(name):
            return
        if self.package is None:
            self._client.load_model(name)
        else:
            self._make_room()
            files = {f"file:{self.package.version}/{file}": data
                     for file, data in self.package.files.items()}
            self._client.load_model(name, config=json.dumps(triton_config(self.contract)),
                                    files=files)
        if not self._client.is_model_ready(name):
            raise Transient(f"model {name} not ready")

    def _make_room(self) -> None:
        """Unload the least recently used models of this family until one more fits."""
        assert self.package is not None
        family = self.package.family
        # The statistics of every loaded model (models loaded with their files are not in
        # the repository index): name -> when it last served, in ms.
        stats = self._client.get_inference_statistics()
        rows = stats["model_stats"] if self.http else [
            {"name": m.name, "last_inference": m.last_inference} for m in stats.model_stats]
        # A model that has not served yet was loaded a moment ago: the most recent of all.
        last = {r["name"]: int(r.get("last_inference", 0)) or float("inf") for r in rows
                if r["name"].startswith(family) and r["name"] != self.contract.name}
        excess = len(last) - (self.package.resident - 1)
        for name in sorted(last, key=last.__getitem__)[:max(excess, 0)]:
            self._client.unload_model(name)
            UNLOADS.labels(self.label, family).inc()

    def infer(self, arrays: tuple[np.ndarray, ...]) -> np.ndarray:
        inputs = []
        for tensor, array in zip(self.contract.inputs, arrays, strict=True):
            item = self._api.InferInput(tensor.name, list(array.shape), tensor.datatype)
            item.set_data_from_numpy(array)
            inputs.append(item)
        outputs = [self._api.InferRequestedOutput(t.name) for t in self.contract.outputs]
        with _classified():
            if self.http:
                result = self._client.infer(self.contract.name, inputs, outputs=outputs)
            else:
                result = self._client.infer(self.contract.name, inputs, outputs=outputs,
                                            client_timeout=self.timeout_s)
        return result.as_numpy(self.contract.outputs[0].name)


@contextmanager
def _classified() -> Iterator[None]:
    """Triton's exceptions as Transient (retry, loading the model again) or Refused."""
    from tritonclient.utils import InferenceServerException

    try:
        yield
    except InferenceServerException as exc:
        message = exc.message() or ""
        if (str(exc.status()) in _TRANSIENT or looks_like_connection_error(exc)
                or any(s in message for s in _RELOAD)):
            raise Transient(message) from exc
        raise Refused(message) from exc


def triton_config(contract: ModelContract) -> dict:
    """The Triton model config (JSON form) of a torch model loaded on demand: the
    contract's tensors, run by the lipdub_torch backend with dynamic batching, on a GPU
    where the server has one."""
    def tensors(group: tuple) -> list[dict]:
        return [{"name": t.name, "data_type": f"TYPE_{t.datatype}", "dims": list(t.dims)}
                for t in group]

    preferred = [n for n in (8, 16, 32, 64) if n <= contract.max_batch_size]
    return {"name": contract.name, "backend": TORCH_BACKEND,
            "max_batch_size": contract.max_batch_size,
            "input": tensors(contract.inputs), "output": tensors(contract.outputs),
            "dynamic_batching": {"preferred_batch_size": preferred,
                                 "max_queue_delay_microseconds": 5000},
            "instance_group": [{"count": 1, "kind": "KIND_AUTO"}]}
