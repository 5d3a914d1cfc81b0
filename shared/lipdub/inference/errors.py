"""Errors of the inference backends (no framework imported here: the job runner and the
gateway classify these without loading torch or a serving client)."""

from __future__ import annotations

from lipdub.errors import LipDubError


class InferenceUnavailableError(LipDubError):
    """The inference server, or the model on it, cannot answer now (down, restarting,
    loading): a passing fault, retried like a database that is unavailable."""

    code = "inference_unavailable"


class InferenceFailedError(LipDubError):
    """The server answered, but refused the request (wrong shapes, a broken model)."""

    code = "inference_failed"
