"""Inference metrics, whichever backend runs the models: request latency, items per request
and failures, labelled by backend (local, triton, ray) and model. A per-identity model is
labelled by its family (sovqae-), not its own name: identities come and go, and a label per
identity would grow Prometheus without bound."""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum

import numpy as np
from prometheus_client import Counter, Histogram

from lipdub.inference.contract import ModelContract, ModelPackage

LATENCY = Histogram("lipdub_inference_seconds", "Inference request latency",
                    ["backend", "model"], buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5,
                                                   5, 10, 30))
BATCH = Histogram("lipdub_inference_batch_size", "Items per inference request",
                  ["backend", "model"], buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))
ERRORS = Counter("lipdub_inference_errors_total", "Failed inference requests",
                 ["backend", "model", "kind"])
UNLOADS = Counter("lipdub_inference_model_unloads_total",
                  "Models unloaded to keep the resident bound", ["backend", "family"])


class ErrorKind(StrEnum):
    """Why an inference request failed (the errors counter's `kind`)."""

    UNAVAILABLE = "unavailable"  # the server could not be reached, or had no model
    REFUSED = "refused"  # it answered with an error


def model_label(contract: ModelContract, package: ModelPackage | None = None) -> str:
    return package.family if package is not None else contract.name


def observe(backend: str, model: str, items: int, started: float) -> None:
    LATENCY.labels(backend, model).observe(time.perf_counter() - started)
    BATCH.labels(backend, model).observe(items)


class Measured:
    """A predictor whose calls are timed and counted (the local backends; remote clients
    measure themselves, around their retries)."""

    def __init__(self, predictor: Callable[..., np.ndarray], backend: str, model: str) -> None:
        self.predictor, self.backend, self.model = predictor, backend, model

    def __call__(self, *arrays: np.ndarray) -> np.ndarray:
        started = time.perf_counter()
        result = self.predictor(*arrays)
        observe(self.backend, self.model, len(arrays[0]), started)
        return result

    def close(self) -> None:
        close = getattr(self.predictor, "close", None)
        if close is not None:
            close()
