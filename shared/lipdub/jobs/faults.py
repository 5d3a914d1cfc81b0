"""Failures that pass: the database or the object store briefly unavailable (full,
read-only, restarting, a dropped connection), or the worker's own disk full. A stage that
meets one is not failed: the job is released and the stage retried with backoff; only after
the policy's last try does the job fail, with the fault's own code."""

from __future__ import annotations

import errno
from dataclasses import dataclass

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from lipdub.inference.errors import InferenceUnavailableError
from lipdub.storage import StoreUnavailableError

DATABASE_UNAVAILABLE = "database_unavailable"
STORAGE_UNAVAILABLE = StoreUnavailableError.code
WORKER_DISK_FULL = "worker_disk_full"
INFERENCE_UNAVAILABLE = InferenceUnavailableError.code

_MESSAGES = {
    DATABASE_UNAVAILABLE: "The job database was unavailable",
    STORAGE_UNAVAILABLE: "The object store was unavailable",
    WORKER_DISK_FULL: "The worker's disk was full",
    INFERENCE_UNAVAILABLE: "The model server was unavailable",
}


class TransientFault(Exception):
    """A stage met a passing fault; the job was released for a retry."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code, self.detail = code, detail

    def __reduce__(self) -> tuple:  # pickled by task queues: rebuild from both fields
        return (TransientFault, (self.code, self.detail))

    def message(self, attempts: int) -> str:
        """For the job's record: what happened, without internals."""
        return f"{_MESSAGES[self.code]} for {attempts} tries in a row. Resubmit the job."


def fault_code(error: BaseException) -> str | None:
    """The code of a passing fault, or None for any other error."""
    if isinstance(error, StoreUnavailableError):
        return STORAGE_UNAVAILABLE
    if isinstance(error, InferenceUnavailableError):
        return INFERENCE_UNAVAILABLE
    if isinstance(error, OperationalError | InterfaceError) or (
            isinstance(error, DBAPIError) and error.connection_invalidated):
        return DATABASE_UNAVAILABLE
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return WORKER_DISK_FULL
    return None


@dataclass(frozen=True)
class RetryPolicy:
    """How a stage that met a passing fault is retried: `attempts` tries in all, the first
    retry after `first_s`, each wait twice the last, none longer than `longest_s`. The
    default spans about 4 minutes: a database failing over or an operator freeing space."""

    attempts: int = 8
    first_s: float = 2.0
    longest_s: float = 300.0

    def delay_s(self, attempt: int) -> float:
        """Seconds before retry number `attempt` (1-based)."""
        return min(self.longest_s, self.first_s * 2 ** (attempt - 1))

    def exhausted(self, attempt: int) -> bool:
        return attempt >= self.attempts
