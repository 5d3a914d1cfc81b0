"""Job inputs given as https URLs: fetched through the SSRF-guarded client (every connection,
redirect hops included, goes only to an address the guard checked; redirects are followed by
hand so that each hop's scheme is checked too), a size limit enforced while streaming,
transient faults retried with backoff, and the file written atomically."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urljoin

import httpx
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from lipdub.errors import LipDubError
from lipdub.jobs.metrics import FETCH_FAILURES, FetchFailure
from lipdub.netguard import NetPolicy

MAX_REDIRECTS = 5


class InputFetchError(LipDubError):
    code = "input_fetch_failed"


class InputTooLargeError(LipDubError):
    code = "input_too_large"


class _TransientFetchError(Exception):
    """Worth another try: the network, or the server's 5xx / 429."""


class UrlFetcher:
    def __init__(self, policy: NetPolicy, max_bytes: int, timeout: httpx.Timeout | None = None,
                 attempts: int = 4, first_wait_s: float = 1.0) -> None:
        self.policy, self.max_bytes = policy, max_bytes
        self.client = policy.client(timeout or httpx.Timeout(30.0, connect=10.0))
        self.attempts, self.first_wait_s = attempts, first_wait_s

    def __call__(self, url: str, target: Path) -> None:
        retrying = Retrying(retry=retry_if_exception_type(_TransientFetchError),
                            stop=stop_after_attempt(self.attempts),
                            wait=wait_exponential(multiplier=self.first_wait_s, max=60),
                            reraise=True)
        try:
            for attempt in retrying:
                with attempt:
                    self._fetch_once(url, target)
        except InputTooLargeError:
            FETCH_FAILURES.labels(FetchFailure.TOO_LARGE).inc()
            raise
        except InputFetchError:
            FETCH_FAILURES.labels(FetchFailure.REJECTED).inc()
            raise
        except LipDubError:
            FETCH_FAILURES.labels(FetchFailure.REFUSED).inc()
            raise
        except _TransientFetchError as exc:
            FETCH_FAILURES.labels(FetchFailure.UNREACHABLE).inc()
            raise InputFetchError(f"Could not fetch '{url}' after {self.attempts} tries: "
                                  f"{exc}.", "Check that the server is up, then resubmit.") \
                from exc

    def _fetch_once(self, url: str, target: Path) -> None:
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            self.policy.target(current)  # scheme and form; the connect checks the address
            try:
                with self.client.stream("GET", current, follow_redirects=False) as response:
                    if response.is_redirect:
                        current = urljoin(current, response.headers.get("location", ""))
                        continue
                    if response.status_code >= 500 or response.status_code == 429:
                        raise _TransientFetchError(f"HTTP {response.status_code}")
                    if response.status_code != 200:
                        raise InputFetchError(
                            f"'{url}' answered HTTP {response.status_code}.",
                            "Check the URL (presigned URLs expire), then resubmit.")
                    self._save(url, response, target)
                    return
            except httpx.TransportError as exc:
                raise _TransientFetchError(type(exc).__name__) from exc
        raise InputFetchError(f"'{url}' redirected more than {MAX_REDIRECTS} times.",
                              "Give the file's final URL.")

    def _save(self, url: str, response: httpx.Response, target: Path) -> None:
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            raise self._too_large(url)
        partial = target.with_name(target.name + ".part")
        written = 0
        try:
            with partial.open("wb") as out:
                for chunk in response.iter_bytes(1 << 20):
                    written += len(chunk)
                    if written > self.max_bytes:
                        raise self._too_large(url)
                    out.write(chunk)
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)

    def _too_large(self, url: str) -> InputTooLargeError:
        return InputTooLargeError(f"'{url}' is larger than the {self.max_bytes}-byte limit.",
                                  "Split the footage, or ask the operator to raise the limit.")
