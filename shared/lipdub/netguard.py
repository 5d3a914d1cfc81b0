"""SSRF guard for user-given URLs (inputs and webhooks): https only unless configured, and
no private, loopback or link-local targets unless allow-listed, checked after DNS."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from lipdub.errors import LipDubError


class UnsafeUrlError(LipDubError):
    code = "unsafe_url"


def check_url(url: str, allow_http: bool = False, allow_hosts: frozenset[str] = frozenset(),
              allow_networks: tuple[str, ...] = ()) -> None:
    parts = urlsplit(url)
    schemes = {"https", "http"} if allow_http else {"https"}
    if parts.scheme not in schemes:
        raise UnsafeUrlError(f"URL scheme '{parts.scheme}' is not allowed for '{url}'.",
                             f"Use {' or '.join(sorted(schemes))}.")
    host = parts.hostname
    if not host:
        raise UnsafeUrlError(f"'{url}' has no host.", "Give a full URL.")
    if host in allow_hosts:
        return
    try:
        infos = socket.getaddrinfo(host, parts.port or 443, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise UnsafeUrlError(f"Host '{host}' does not resolve.", "Check the URL.") from exc
    networks = [ipaddress.ip_network(n) for n in allow_networks]
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if any(address in n for n in networks):
            continue
        if (address.is_private or address.is_loopback or address.is_link_local
                or address.is_multicast or address.is_reserved or address.is_unspecified):
            raise UnsafeUrlError(
                f"'{url}' resolves to {address}, a private or local address.",
                "Use a public URL, or allow-list this host in the platform configuration.")
