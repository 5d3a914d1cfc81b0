"""Job inputs fetched from URLs: transient faults retried, every redirect hop checked
against the SSRF guard, size limits enforced while streaming, nothing half-written."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from lipdub.jobs.fetch import InputFetchError, InputTooLargeError, UrlFetcher
from lipdub.netguard import NetPolicy, UnsafeUrlError
from tests.http_helpers import Site

PAYLOAD = bytes(range(256)) * 400  # 100 KiB


def fetcher(max_bytes: int = 1_000_000) -> UrlFetcher:
    return UrlFetcher(NetPolicy.of(allow_http=True, allow_hosts=["127.0.0.1"]), max_bytes,
                      httpx.Timeout(5), attempts=3, first_wait_s=0.01)


def test_transient_failures_are_retried_then_the_file_lands(site: Site, tmp_path: Path) -> None:
    site.script["/clip.mp4"] = [(503, {}, b""), (500, {}, b""),
                                (200, {"Content-Length": str(len(PAYLOAD))}, PAYLOAD)]
    target = tmp_path / "video.mp4"
    fetcher()(f"{site.base}/clip.mp4", target)
    assert target.read_bytes() == PAYLOAD and site.hits["/clip.mp4"] == 3


def test_a_server_that_keeps_failing_gives_a_clear_error(site: Site, tmp_path: Path) -> None:
    site.script["/down.mp4"] = [(502, {}, b"")]
    with pytest.raises(InputFetchError, match="after 3 tries: HTTP 502"):
        fetcher()(f"{site.base}/down.mp4", tmp_path / "v.mp4")
    site.script["/gone.mp4"] = [(404, {}, b"")]
    with pytest.raises(InputFetchError, match="HTTP 404"):
        fetcher()(f"{site.base}/gone.mp4", tmp_path / "v.mp4")
    assert site.hits["/gone.mp4"] == 1  # a 404 is not retried
    assert list(tmp_path.iterdir()) == []


def test_redirects_are_followed_and_each_hop_is_checked(site: Site, tmp_path: Path) -> None:
    site.script["/a"] = [(302, {"Location": "/b"}, b"")]
    site.script["/b"] = [(200, {}, PAYLOAD)]
    fetcher()(f"{site.base}/a", tmp_path / "ok.mp4")
    assert (tmp_path / "ok.mp4").read_bytes() == PAYLOAD
    # A public-looking start that redirects into the private network is refused.
    site.script["/evil"] = [(307, {"Location": "http://10.1.2.3/metadata"}, b"")]
    with pytest.raises(UnsafeUrlError, match="10.1.2.3"):
        fetcher()(f"{site.base}/evil", tmp_path / "evil.mp4")
    assert not (tmp_path / "evil.mp4").exists()


@pytest.mark.parametrize("declared", [True, False])
def test_oversize_inputs_stop_without_leaving_a_file(site: Site, tmp_path: Path,
                                                     declared: bool) -> None:
    headers = {"Content-Length": str(len(PAYLOAD))} if declared else {}
    site.script["/big.mp4"] = [(200, headers, PAYLOAD)]
    with pytest.raises(InputTooLargeError, match="50000-byte limit"):
        fetcher(max_bytes=50_000)(f"{site.base}/big.mp4", tmp_path / "big.mp4")
    assert list(tmp_path.iterdir()) == []


def test_each_failure_counts_under_its_reason(site: Site, tmp_path: Path) -> None:
    """lipdub_fetch_failures_total: what an operator's dashboard splits fetch failures by."""
    from prometheus_client import REGISTRY

    def failures() -> dict[str, float]:
        return {reason: REGISTRY.get_sample_value("lipdub_fetch_failures_total",
                                                  {"reason": reason})
                for reason in ("unreachable", "rejected", "refused", "too_large")}

    before = failures()
    site.script["/down.mp4"] = [(503, {}, b"")]
    site.script["/gone.mp4"] = [(404, {}, b"")]
    site.script["/evil"] = [(307, {"Location": "http://10.1.2.3/metadata"}, b"")]
    site.script["/big.mp4"] = [(200, {}, PAYLOAD)]
    for path, error in (("/down.mp4", InputFetchError), ("/gone.mp4", InputFetchError),
                        ("/evil", UnsafeUrlError), ("/big.mp4", InputTooLargeError)):
        with pytest.raises(error):
            fetcher(max_bytes=50_000)(f"{site.base}{path}", tmp_path / "v.mp4")
    after = failures()
    assert {reason: after[reason] - before[reason] for reason in after} == {
        "unreachable": 1, "rejected": 1, "refused": 1, "too_large": 1}
