"""The SSRF guard against a corpus of destinations: every IANA special-purpose range (IPv4
and IPv6), their IPv4-mapped, 6to4, NAT64, IPv4-compatible and Teredo forms, decimal, octal
and hex spellings, names that resolve to them, redirects to them, a resolver that changes
its answer between lookups, and malformed URLs; for URL inputs and for webhooks.

No test here opens a connection anywhere but loopback: `tripwire` fails any other."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import httpcore
import httpx
import pytest

from lipdub.jobs.fetch import UrlFetcher
from lipdub.netguard import NetPolicy, UnsafeUrlError, is_public
from tests.http_helpers import Site

# One address from each special-purpose range that is not globally reachable (IANA IPv4
# and IPv6 Special-Purpose Address Registries), written out here rather than taken from the
# guard's own source, so that a guard that drifts fails.
SPECIAL_IPV4 = {
    "0.0.0.0/8 this network": "0.1.2.3",
    "10.0.0.0/8 private": "10.20.30.40",
    "100.64.0.0/10 shared (CGNAT)": "100.100.100.200",
    "127.0.0.0/8 loopback": "127.0.0.1",
    "169.254.0.0/16 link local (cloud metadata)": "169.254.169.254",
    "172.16.0.0/12 private": "172.31.255.1",
    "192.0.0.0/24 IETF protocol assignments": "192.0.0.8",
    "192.0.2.0/24 documentation": "192.0.2.10",
    "192.88.99.0/24 6to4 relay anycast": "192.88.99.1",
    "192.168.0.0/16 private": "192.168.1.1",
    "198.18.0.0/15 benchmarking": "198.18.0.5",
    "198.51.100.0/24 documentation": "198.51.100.7",
    "203.0.113.0/24 documentation": "203.0.113.9",
    "224.0.0.0/4 multicast": "239.255.255.250",
    "240.0.0.0/4 reserved": "240.0.0.1",
    "255.255.255.255/32 broadcast": "255.255.255.255",
}
SPECIAL_IPV6 = {
    "::/128 unspecified": "::",
    "::1/128 loopback": "::1",
    "64:ff9b:1::/48 local-use NAT64": "64:ff9b:1::1",
    "100::/64 discard": "100::1",
    "2001::/23 IETF protocol assignments": "2001:2::1",
    "2001:db8::/32 documentation": "2001:db8::1",
    "3fff::/20 documentation": "3fff::1",
    "5f00::/16 SRv6": "5f00::1",
    "fc00::/7 unique local": "fd12:3456::1",
    "fe80::/10 link local": "fe80::1",
    "ff00::/8 multicast": "ff02::1",
}
PUBLIC = ["8.8.8.8", "1.1.1.1", "2001:4860:4860::8888", "2606:4700:4700::1111"]


def embedded_forms(v4: str) -> dict[str, str]:
    """The IPv6 spellings that deliver to an IPv4 address."""
    n = int(ipaddress.IPv4Address(v4))
    hi, lo = n >> 16, n & 0xFFFF
    teredo_client = n ^ 0xFFFFFFFF  # Teredo stores the client address inverted
    return {
        "mapped": f"::ffff:{v4}",
        "6to4": f"2002:{hi:x}:{lo:x}::1",
        "nat64": f"64:ff9b::{hi:x}:{lo:x}",
        "nat64-local": f"64:ff9b:1::{hi:x}:{lo:x}",
        "compatible": f"::{hi:x}:{lo:x}",
        "teredo": f"2001:0:4136:e378:8000:63bf:{teredo_client >> 16:x}:"
                  f"{teredo_client & 0xFFFF:x}",
    }


# 127.0.0.1 as the C library's address parser also reads it.
LOOPBACK_SPELLINGS = ["2130706433", "0177.0.0.1", "0x7f.0.0.1", "0x7f000001", "127.1",
                      "017700000001", "127.000.000.001"]
MALFORMED = ["https://[::1/x", "https://example.com:99999/x", "https://example.com:0/x",
             f"https://{'a' * 64}.example.com/x", "https://a..example.com/x", "https:///x",
             "https://" + "a." * 130 + "com/x", "https://x.example/" + "a" * 5000,
             "ftp://example.com/x", "file:///etc/passwd", "gopher://127.0.0.1:6379/_x",
             "not a url", ""]


@pytest.fixture
def tripwire(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every connection the HTTP stack opens; anything but loopback fails the test."""
    opened: list[str] = []
    real = httpcore.SyncBackend.connect_tcp

    def connect(self, host, port, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        opened.append(host)
        assert ipaddress.ip_address(host).is_loopback, f"connection attempted to {host}"
        return real(self, host, port, *args, **kwargs)

    monkeypatch.setattr(httpcore.SyncBackend, "connect_tcp", connect)
    return opened


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[list[str]]]:
    """Names answered from a script: name -> one answer per lookup (the last repeats)."""
    answers: dict[str, list[list[str]]] = {}
    calls: dict[str, int] = {}

    def resolve(host: str, port: int) -> list[str]:
        if host not in answers:
            raise OSError(f"{host}: unknown name")
        n = calls[host] = calls.get(host, 0) + 1
        return answers[host][min(n, len(answers[host])) - 1]

    monkeypatch.setattr("lipdub.netguard.resolve", resolve)
    answers["_calls"] = calls  # type: ignore[assignment]
    return answers


def corpus() -> list[tuple[str, str]]:
    cases = [(name, address) for name, address in {**SPECIAL_IPV4, **SPECIAL_IPV6}.items()]
    for name, v4 in SPECIAL_IPV4.items():
        cases += [(f"{name} as {form}", v6) for form, v6 in embedded_forms(v4).items()]
    return cases


@pytest.mark.parametrize(("name", "address"), corpus(), ids=[c[0] for c in corpus()])
def test_every_special_purpose_address_is_refused(name: str, address: str) -> None:
    assert not is_public(ipaddress.ip_address(address)), name
    host = f"[{address}]" if ":" in address else address
    with pytest.raises(UnsafeUrlError, match="not a public address"):
        NetPolicy().check_url(f"https://{host}/clip.mp4")


def test_public_addresses_and_their_embedded_forms_pass() -> None:
    for address in PUBLIC:
        assert is_public(ipaddress.ip_address(address)), address
    for form, v6 in embedded_forms("8.8.8.8").items():
        if form in ("6to4",):  # a public IPv4 behind a 6to4 prefix is routable
            assert is_public(ipaddress.ip_address(v6)), form


@pytest.mark.parametrize("spelling", LOOPBACK_SPELLINGS)
def test_decimal_octal_and_hex_spellings_of_loopback_are_refused(spelling: str) -> None:
    with pytest.raises(UnsafeUrlError, match="127.0.0.1"):
        NetPolicy().check_url(f"https://{spelling}/clip.mp4")


@pytest.mark.parametrize("url", MALFORMED)
def test_malformed_urls_get_a_clear_error(url: str) -> None:
    with pytest.raises(UnsafeUrlError) as caught:
        NetPolicy().check_url(url)
    assert len(str(caught.value)) < 600  # a sentence, not a dump of the input


def test_names_that_resolve_to_special_addresses_are_refused(resolver) -> None:  # noqa: ANN001
    resolver["metadata.example"] = [["169.254.169.254"]]
    resolver["mixed.example"] = [["93.184.216.34", "10.0.0.1"]]  # one bad answer is enough
    resolver["v6.example"] = [["::ffff:127.0.0.1"]]
    for name in ("metadata.example", "mixed.example", "v6.example"):
        with pytest.raises(UnsafeUrlError, match="not a public address"):
            NetPolicy().check_url(f"https://{name}/x")
    with pytest.raises(UnsafeUrlError, match="does not resolve"):
        NetPolicy().check_url("https://nowhere.example/x")


def test_operator_allow_lists_open_named_hosts_and_networks(resolver) -> None:  # noqa: ANN001
    resolver["nas.studio"] = [["10.1.2.3"]]
    NetPolicy.of(allow_hosts=["nas.studio"]).check_url("https://nas.studio/x")
    NetPolicy.of(allow_networks=["10.1.0.0/16"]).check_url("https://nas.studio/x")
    with pytest.raises(UnsafeUrlError):
        NetPolicy.of(allow_networks=["10.2.0.0/16"]).check_url("https://nas.studio/x")
    with pytest.raises(UnsafeUrlError, match="scheme 'http'"):
        NetPolicy.of(allow_hosts=["nas.studio"]).check_url("http://nas.studio/x")


def _fetcher(policy: NetPolicy) -> UrlFetcher:
    return UrlFetcher(policy, 1_000_000, httpx.Timeout(5), attempts=1, first_wait_s=0.01)


@pytest.mark.parametrize("target", ["http://10.1.2.3/x", "http://169.254.169.254/latest",
                                    "http://100.100.100.200/x", "http://[::ffff:127.0.0.2]/x",
                                    "http://[2002:a9fe:a9fe::1]/x", "http://2130706433/x",
                                    "http://[fd00::1]/x", "http://0x7f.1/x"])
def test_redirects_to_special_addresses_are_refused_before_connecting(
        site: Site, tmp_path: Path, tripwire: list[str], target: str) -> None:
    site.script["/go"] = [(302, {"Location": target}, b"")]
    policy = NetPolicy.of(allow_http=True, allow_hosts=["127.0.0.1"])
    with pytest.raises(UnsafeUrlError):
        _fetcher(policy)(f"{site.base}/go", tmp_path / "x.mp4")
    assert tripwire == ["127.0.0.1"]  # the allow-listed start only
    assert not (tmp_path / "x.mp4").exists()


def test_a_name_that_rebinds_between_lookups_cannot_reach_loopback(
        site: Site, tmp_path: Path, tripwire: list[str], resolver) -> None:  # noqa: ANN001
    """Public on the first lookup (the early check passes), loopback on the next: the
    connect makes its own lookup, checks that very answer and refuses it."""
    port = site.base.rsplit(":", 1)[1]
    resolver["rebind.example"] = [["93.184.216.34"], ["127.0.0.1"]]
    site.script["/clip.mp4"] = [(200, {}, b"secret")]
    policy = NetPolicy.of(allow_http=True)
    url = f"http://rebind.example:{port}/clip.mp4"
    policy.check_url(url)  # admission: public
    with pytest.raises(UnsafeUrlError, match="127.0.0.1"):
        _fetcher(policy)(url, tmp_path / "x.mp4")
    assert site.hits == {} and tripwire == []


def test_the_address_connected_to_is_the_one_checked(site: Site, tmp_path: Path,
                                                     tripwire: list[str],
                                                     resolver) -> None:  # noqa: ANN001
    """One lookup per connection, shared by the check and the connect (the allowed network
    here stands in for a public one)."""
    port = site.base.rsplit(":", 1)[1]
    resolver["media.example"] = [["127.0.0.1"], ["10.9.9.9"]]
    site.script["/clip.mp4"] = [(200, {}, b"frames")]
    policy = NetPolicy.of(allow_http=True, allow_networks=["127.0.0.0/8"])
    _fetcher(policy)(f"http://media.example:{port}/clip.mp4", tmp_path / "x.mp4")
    assert (tmp_path / "x.mp4").read_bytes() == b"frames"
    assert resolver["_calls"]["media.example"] == 1 and tripwire == ["127.0.0.1"]


def test_webhooks_are_guarded_at_connect_time_too(site: Site, tripwire: list[str],
                                                  resolver) -> None:  # noqa: ANN001
    port = site.base.rsplit(":", 1)[1]
    resolver["hooks.example"] = [["93.184.216.34"], ["127.0.0.1"]]
    policy = NetPolicy.of(allow_http=True)
    url = f"http://hooks.example:{port}/hook"
    policy.check_url(url)
    with pytest.raises(UnsafeUrlError, match="127.0.0.1"):
        policy.client(httpx.Timeout(5)).post(url, content=b"{}")
    assert site.hits == {} and tripwire == []


def test_environment_proxies_are_not_used(monkeypatch: pytest.MonkeyPatch, site: Site,
                                          tmp_path: Path, tripwire: list[str]) -> None:
    """Through a proxy the address checked would be the proxy's, not the target's."""
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
    site.script["/clip.mp4"] = [(200, {}, b"direct")]
    policy = NetPolicy.of(allow_http=True, allow_hosts=["127.0.0.1"])
    _fetcher(policy)(f"{site.base}/clip.mp4", tmp_path / "x.mp4")
    assert (tmp_path / "x.mp4").read_bytes() == b"direct"
