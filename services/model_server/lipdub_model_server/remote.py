"""What every remote inference client shares: retries on transient faults with backoff,
the mapping of failures to the core's errors (InferenceUnavailableError, a passing fault
the job runner retries; InferenceFailedError, a refusal), and Prometheus metrics (latency,
batch sizes, errors, per backend and model). Subclasses say how to reach their server."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import numpy as np
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from lipdub.inference.contract import ModelContract, ModelPackage
from lipdub.inference.errors import InferenceFailedError, InferenceUnavailableError
from lipdub.inference.metrics import ERRORS, ErrorKind, model_label, observe

T = TypeVar("T")

# Transport failures meaning "not now" rather than "never".
_CONNECTION = ("connection refused", "failed to connect", "unavailable", "connection reset",
               "broken pipe", "timed out", "server disconnected")


def looks_like_connection_error(exc: Exception) -> bool:
    return any(s in str(exc).lower() for s in _CONNECTION)


class Transient(Exception):
    """Retry: the server or model cannot answer now (down, restarting, loading)."""


class Refused(Exception):
    """Do not retry: the server answered and refused the request."""


class RemotePredictor:
    label = "remote"

    def __init__(self, address: str, contract: ModelContract, package: ModelPackage | None,
                 attempts: int, first_wait_s: float) -> None:
        self.address, self.contract, self.package = address, contract, package
        self._retrying = dict(retry=retry_if_exception_type(Transient),
                              stop=stop_after_attempt(attempts),
                              wait=wait_exponential(multiplier=first_wait_s, max=10),
                              reraise=True)
        self._loaded = False  # known to be loaded on the server
        self.model = model_label(contract, package)
        for kind in ErrorKind:  # at zero from the start: the error-rate alert needs a series
            ERRORS.labels(self.label, self.model, kind)

    def __call__(self, *arrays: np.ndarray) -> np.ndarray:
        arrays = tuple(np.ascontiguousarray(a, dtype=np.float32) for a in arrays)
        started = time.perf_counter()
        result = self.guarded(lambda: self.request(arrays))
        observe(self.label, self.model, len(arrays[0]), started)
        return result

    def ensure_ready(self) -> None:
        """The server answers and the model is loaded (loading it if needed)."""
        if not self._loaded:
            self.guarded(self.make_ready)
            self._loaded = True

    def request(self, arrays: tuple[np.ndarray, ...]) -> np.ndarray:
        """One inference, loading the model first where it is not known to be loaded (at
        the first request, and again after a restart or another worker unloaded it)."""
        if not self._loaded:
            self.make_ready()
            self._loaded = True
        return self.infer(arrays)

    def make_ready(self) -> None:
        raise NotImplementedError

    def infer(self, arrays: tuple[np.ndarray, ...]) -> np.ndarray:
        raise NotImplementedError

    def guarded(self, action: Callable[[], T]) -> T:
        try:
            for attempt in Retrying(**self._retrying):
                with attempt:
                    try:
                        return action()
                    except Transient:
                        self._loaded = False
                        raise
                    except (ConnectionError, OSError) as exc:
                        self._loaded = False
                        raise Transient(str(exc)) from exc
        except Transient as exc:
            ERRORS.labels(self.label, self.model, ErrorKind.UNAVAILABLE).inc()
            raise InferenceUnavailableError(
                f"The inference server at {self.address} could not serve "
                f"'{self.contract.name}': {exc}.",
                "Check that the model server is up and the model exported "
                "(lipdub models export).") from exc
        except Refused as exc:
            ERRORS.labels(self.label, self.model, ErrorKind.REFUSED).inc()
            raise InferenceFailedError(
                f"The inference server refused the request for '{self.contract.name}': "
                f"{exc}.", "Check that workers and server run the same release.") from exc
        raise AssertionError("unreachable: Retrying returns or raises")
