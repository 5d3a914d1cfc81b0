"""The workers' side of the Ray Serve application (`ray+http://host:8100`): the same
Predictor contract as Triton's client. A model the application does not hold (an identity
restorer) is uploaded on first use, then requested; Ray Serve loads it on a replica and
keeps the `resident` most recently used (its own multiplexing LRU)."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import numpy as np

from lipdub.inference.contract import ModelContract, ModelPackage
from lipdub.inference.errors import InferenceFailedError
from lipdub_model_server.ray_protocol import (
    MODEL_HEADER,
    OUTPUT,
    READY_PATH,
    decode_arrays,
    encode_arrays,
    file_path,
    infer_path,
)
from lipdub_model_server.remote import Refused, RemotePredictor, Transient

DEFAULT_PORT = 8100


class RayPredictor(RemotePredictor):
    label = "ray-http"

    def __init__(self, spec: str, contract: ModelContract, package: ModelPackage | None = None,
                 timeout_s: float = 60.0, attempts: int = 4, first_wait_s: float = 0.5) -> None:
        parts = urlsplit(spec)
        if parts.scheme != "ray+http" or not parts.hostname:
            raise InferenceFailedError(f"'{spec}' is not a Ray Serve address.",
                                       f"Use ray+http://host:{DEFAULT_PORT}.")
        address = f"{parts.hostname}:{parts.port or DEFAULT_PORT}"
        super().__init__(address, contract, package, attempts, first_wait_s)
        # Thread-safe, pooled; the model server is internal: no proxies from the environment.
        self._http = httpx.Client(base_url=f"http://{address}", timeout=timeout_s,
                                  trust_env=False)

    def make_ready(self) -> None:
        if self._send("GET", READY_PATH).status_code != 200:
            raise Transient("the application is not ready")

    def infer(self, arrays: tuple[np.ndarray, ...]) -> np.ndarray:
        body = encode_arrays({t.name: a for t, a in zip(self.contract.inputs, arrays,
                                                        strict=True)})
        answer = self._post(body)
        if answer.status_code == 404 and self.package is not None:
            self._upload()
            answer = self._post(body)
        if answer.status_code == 200:
            return decode_arrays(answer.content)[OUTPUT]
        raise self._failure(answer)

    def _post(self, body: bytes) -> httpx.Response:
        return self._send("POST", infer_path(self.contract.name), content=body,
                          headers={MODEL_HEADER: self.contract.name})

    def _upload(self) -> None:
        assert self.package is not None
        for file, data in self.package.files.items():
            answer = self._send("PUT", file_path(self.contract.name, self.package.version,
                                                 file), content=data)
            if answer.status_code != 201:
                raise self._failure(answer)

    def _send(self, method: str, path: str, **kwargs) -> httpx.Response:  # noqa: ANN003
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise Transient(f"{type(exc).__name__}: {exc}") from exc

    @staticmethod
    def _failure(answer: httpx.Response) -> Exception:
        try:
            detail = answer.json().get("detail", answer.text)
        except ValueError:
            detail = answer.text[:200]
        if answer.status_code in (404, 429, 500, 502, 503, 504):
            return Transient(f"HTTP {answer.status_code}: {detail}")
        return Refused(f"HTTP {answer.status_code}: {detail}")
