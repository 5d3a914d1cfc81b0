"""SSRF guard for every URL a user gives (job inputs, webhook targets).

- https only, unless the operator allows http;
- only globally routable unicast destinations (Python's reading of the IANA special-purpose
  registries), judged again on the IPv4 address that an IPv6 transition address carries
  (IPv4-mapped and -compatible, 6to4, NAT64, Teredo), unless the operator allow-lists the
  host name or the network;
- the address that is checked is the address connected to: the check runs inside the HTTP
  client's own connect (`NetPolicy.client`), on the one DNS answer that is then used, so a
  name that answers differently on a second lookup (DNS rebinding) gains nothing.

`NetPolicy.check_url` is the early check (a clear 4xx when a job is submitted); the connect
is the enforcement."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from lipdub.errors import LipDubError

MAX_URL_LENGTH = 4096

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# IPv6 prefixes whose addresses carry an IPv4 address in their last 32 bits.
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
# Special-purpose ranges this Python's registry copy does not know yet (or reads as global).
_NOT_GLOBAL = tuple(ipaddress.ip_network(n) for n in (
    "192.0.0.0/24",  # IETF protocol assignments (3.11 knows only parts of it)
    "192.88.99.0/24",  # 6to4 relay anycast, deprecated (RFC 7526)
    "64:ff9b:1::/48",  # local-use NAT64 (RFC 8215)
    "3fff::/20",  # documentation (RFC 9637)
    "5f00::/16",  # SRv6 segment identifiers (RFC 9602)
))


class UnsafeUrlError(LipDubError):
    code = "unsafe_url"


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to: the one place the guard asks DNS (tests replace
    it with resolvers that misbehave)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def embedded_ipv4(address: IPAddress) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 transition address would deliver to."""
    if isinstance(address, ipaddress.IPv4Address):
        return []
    found: list[ipaddress.IPv4Address] = []
    if address.ipv4_mapped is not None:
        found.append(address.ipv4_mapped)
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)
    if any(address in net for net in (*_NAT64, _IPV4_COMPATIBLE)) and int(address) > 1:
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def is_public(address: IPAddress) -> bool:
    """Globally routable unicast, and so is any IPv4 address it carries."""
    if not address.is_global or address.is_multicast or any(
            address in net for net in _NOT_GLOBAL):
        return False
    return all(is_public(inner) for inner in embedded_ipv4(address))


@dataclass(frozen=True)
class NetPolicy:
    allow_http: bool = False
    # Host names the operator trusts whatever they resolve to (e.g. an internal media host).
    allow_hosts: frozenset[str] = frozenset()
    # Networks the operator allows although they are not public (e.g. a studio's NAS).
    allow_networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def of(cls, allow_http: bool = False, allow_hosts: list[str] | frozenset[str] = (),
           allow_networks: list[str] | tuple[str, ...] = ()) -> NetPolicy:
        return cls(allow_http, frozenset(h.lower().rstrip(".") for h in allow_hosts),
                   tuple(ipaddress.ip_network(n, strict=False) for n in allow_networks))

    def target(self, url: str) -> tuple[str, int]:
        """(host, port) of a URL that is well formed and of an allowed scheme."""
        if not isinstance(url, str) or len(url) > MAX_URL_LENGTH:
            raise UnsafeUrlError(f"The URL is longer than {MAX_URL_LENGTH} characters.",
                                 "Give a shorter URL.")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:  # an unclosed IPv6 bracket, a port past 65535
            raise UnsafeUrlError(f"'{_short(url)}' is not a valid URL: {exc}.",
                                 "Give a full https:// URL.") from exc
        schemes = ("http", "https") if self.allow_http else ("https",)
        if parts.scheme not in schemes:
            raise UnsafeUrlError(f"URL scheme '{parts.scheme}' is not allowed for "
                                 f"'{_short(url)}'.", f"Use {' or '.join(schemes)}.")
        host = (parts.hostname or "").rstrip(".")
        if not host:
            raise UnsafeUrlError(f"'{_short(url)}' has no host.", "Give a full URL.")
        if port == 0:
            raise UnsafeUrlError(f"'{_short(url)}' names port 0.", "Give a real port.")
        _check_host_syntax(host, url)
        return host, port or (443 if parts.scheme == "https" else 80)

    def allowed(self, address: IPAddress) -> bool:
        return any(address in net for net in self.allow_networks) or is_public(address)

    def addresses(self, host: str, port: int) -> list[str]:
        """What `host` resolves to, each address allowed; refused if any one is not (a
        client must not be able to pick the bad one of several)."""
        if host.lower().rstrip(".") in self.allow_hosts:
            return resolve(host, port)
        try:
            found = resolve(host, port)
        except (OSError, UnicodeError) as exc:
            raise UnsafeUrlError(f"Host '{host}' does not resolve.", "Check the URL.") from exc
        for text in found:
            address = ipaddress.ip_address(text.split("%", 1)[0])
            if not self.allowed(address):
                raise UnsafeUrlError(
                    f"'{host}' resolves to {address}, which is not a public address.",
                    "Use a public URL, or ask the operator to allow-list this host.")
        return found

    def check_url(self, url: str) -> None:
        """The early check, when a URL is given: well formed, allowed scheme, and a host that
        resolves to allowed addresses now (the connect checks again)."""
        self.addresses(*self.target(url))

    def client(self, timeout: httpx.Timeout) -> httpx.Client:
        """An HTTP client that connects only to addresses this policy allows. Environment
        proxies are ignored: through a proxy, the address checked would be the proxy's."""
        return httpx.Client(transport=GuardedTransport(self), timeout=timeout,
                            trust_env=False)


def _short(url: str) -> str:
    return url if len(url) <= 200 else url[:200] + "..."


def _check_host_syntax(host: str, url: str) -> None:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
        return
    except ValueError:
        pass
    try:
        encoded = host.encode("idna")  # refuses empty or over-long (> 63) labels
    except UnicodeError as exc:
        raise UnsafeUrlError(f"'{_short(url)}' has an invalid host name: {exc}.",
                             "Check the URL.") from exc
    if len(encoded) > 253:
        raise UnsafeUrlError(f"'{_short(url)}' has a host name longer than 253 characters.",
                             "Check the URL.")


class _GuardedBackend(httpcore.NetworkBackend):
    """Resolves once, checks every address, connects to a checked one."""

    def __init__(self, policy: NetPolicy) -> None:
        self.policy = policy
        self.inner = httpcore.SyncBackend()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None,
                    socket_options: Any = None) -> httpcore.NetworkStream:
        error: Exception | None = None
        for address in self.policy.addresses(host, port):
            try:
                return self.inner.connect_tcp(address, port, timeout, local_address,
                                              socket_options)
            except httpcore.ConnectError as exc:
                error = exc
        raise error or httpcore.ConnectError(f"no address for {host}")

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Any = None) -> httpcore.NetworkStream:
        raise UnsafeUrlError("Unix sockets are not a URL target.", "Give an https:// URL.")

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


class GuardedTransport(httpx.HTTPTransport):
    def __init__(self, policy: NetPolicy) -> None:
        super().__init__(trust_env=False)
        # httpx takes no network backend of its own, so its connection pool is rebuilt with
        # ours (TLS still verifies the URL's host name: httpcore passes it as the SNI name).
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            network_backend=_GuardedBackend(policy))
