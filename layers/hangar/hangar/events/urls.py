"""Where a webhook may point, checked at creation and again before every delivery (DNS may change).

A URL must be `https` and every address its host resolves to must be public: no loopback, private,
link-local (the cloud metadata service, 169.254.169.254), shared, multicast, reserved or unspecified
range, IPv4-mapped IPv6 included. `allow_loopback` (the `AllowInsecureWebhooks` template parameter, on
in `make run` only) lets loopback hosts through, over `http` or `https`; every other range stays refused.

A delivery connects to the address that was checked (the connection is pinned to it, with the URL's
host in `Host` and in TLS SNI and certificate checks), so a name that resolves differently a moment
later cannot send the request elsewhere. Redirects are never followed: http.client does not follow them.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

Resolver = Callable[..., Sequence[Any]]
MAX_RESPONSE_BYTES = 64 * 1024
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})


class WebhookUrlRefused(Exception):
    """The URL breaks a rule; the message says which (never includes anything secret)."""


@dataclass(frozen=True)
class WebhookTarget:
    """A checked URL: where to connect (`address`, one the host resolved to) and what to ask for."""

    scheme: str
    host: str
    port: int
    target: str  # path and query, as sent on the request line
    address: str


def _address_refusal(address: ipaddress.IPv4Address | ipaddress.IPv6Address, allow_loopback: bool) -> str | None:
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        address = mapped
    if address.is_loopback:
        return None if allow_loopback else "a loopback address"
    if address.is_link_local:
        return "a link-local address (such as the metadata service)"
    if address.is_private:
        return "a private address"
    if address.is_multicast or address.is_reserved or address.is_unspecified or not address.is_global:
        return "a non-public address"
    return None


def _parse(url: str, allow_loopback: bool) -> tuple[str, str, int, str]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise WebhookUrlRefused(f"The URL is not valid: {error}") from None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme not in ("https", "http"):
        raise WebhookUrlRefused("The URL must start with https://")
    if not host:
        raise WebhookUrlRefused("The URL has no host")
    if parts.username is not None or parts.password is not None:
        raise WebhookUrlRefused("The URL must not carry credentials (user:password@)")
    if parts.fragment:
        raise WebhookUrlRefused("The URL must not have a #fragment")
    if any(ord(char) < 0x21 or ord(char) == 0x7F for char in url):
        raise WebhookUrlRefused("The URL must not contain spaces or control characters")
    if scheme == "http" and not (allow_loopback and _is_loopback_host(host)):
        raise WebhookUrlRefused("The URL must start with https:// (http is allowed for loopback in local mode only)")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return scheme, host, port or (443 if scheme == "https" else 80), target


def _is_loopback_host(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str, allow_loopback: bool, resolve: Resolver = socket.getaddrinfo) -> WebhookTarget:
    """The URL checked and resolved; WebhookUrlRefused says why not. Every address the host resolves to
    must be allowed (a name with one private address among public ones is refused)."""
    scheme, host, port, target = _parse(url, allow_loopback)
    try:
        literal: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        if host in LOOPBACK_NAMES and not allow_loopback:
            raise WebhookUrlRefused(f"The URL's host {host} is a loopback name")
        try:
            found = resolve(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            raise WebhookUrlRefused(f"The URL's host {host} does not resolve") from None
        addresses = list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in found))
        if not addresses:
            raise WebhookUrlRefused(f"The URL's host {host} does not resolve")
    for address in addresses:
        refusal = _address_refusal(address, allow_loopback)
        if refusal is not None:
            raise WebhookUrlRefused(f"The URL's host {host} resolves to {refusal}, which webhooks may not reach")
    return WebhookTarget(scheme, host, port, target, str(addresses[0]))


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, target: WebhookTarget, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = target.address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, target: WebhookTarget, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout, context=ssl.create_default_context())
        self._address = target.address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def post(target: WebhookTarget, body: bytes, headers: Mapping[str, str], timeout: float) -> int:
    """POSTs `body` to the checked target and returns the status code (a redirect is just its 3xx).
    The whole exchange, reading at most 64 KiB of the answer, must end within `timeout` seconds;
    OSError (connection, TLS, timeout) and http.client.HTTPException propagate."""
    deadline = time.monotonic() + timeout
    factory = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    connection = factory(target, timeout)
    try:
        connection.request("POST", target.target, body=body, headers=dict(headers))
        response = connection.getresponse()
        read = 0
        while read < MAX_RESPONSE_BYTES:
            if connection.sock is not None:
                connection.sock.settimeout(max(0.001, deadline - time.monotonic()))
            chunk = response.read1(MAX_RESPONSE_BYTES - read) if hasattr(response, "read1") else b""
            if not chunk:
                break
            read += len(chunk)
        if time.monotonic() > deadline:
            raise TimeoutError(f"no complete answer within {timeout:g} s")
        return int(response.status)
    finally:
        connection.close()
