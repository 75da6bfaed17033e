"""Webhook URL rules and SSRF defences (hangar.events.urls), with DNS answers chosen by the test."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from hangar.events.urls import WebhookUrlRefused, check_url


def resolving_to(*addresses: str) -> Any:
    def resolve(host: str, port: int, **_: Any) -> list[Any]:
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses
        ]

    return resolve


def test_a_public_https_url_is_pinned_to_the_address_it_resolved_to() -> None:
    target = check_url("https://hooks.example.com:8443/in?x=1", False, resolving_to("93.184.215.14"))
    assert (target.scheme, target.host, target.port, target.target) == ("https", "hooks.example.com", 8443, "/in?x=1")
    assert target.address == "93.184.215.14"


@pytest.mark.parametrize(
    ("url", "addresses", "reason"),
    [
        ("http://hooks.example.com/", ("93.184.215.14",), "https://"),
        ("https://127.0.0.1/", (), "loopback"),
        ("https://localhost/", ("127.0.0.1",), "loopback"),
        ("https://10.0.0.1/", (), "private"),
        ("https://192.168.1.10/", (), "private"),
        ("https://169.254.169.254/latest/meta-data/", (), "link-local"),
        ("https://[fd00:ec2::254]/", (), "private"),
        ("https://[::ffff:169.254.169.254]/", (), "link-local"),
        ("https://100.64.0.1/", (), "non-public"),
        ("https://0.0.0.0/", (), "private|non-public"),
        ("https://internal.example.com/", ("10.1.2.3",), "private"),
        ("https://mixed.example.com/", ("93.184.215.14", "10.1.2.3"), "private"),
        ("https://user:secret@hooks.example.com/", ("93.184.215.14",), "credentials"),
        ("ftp://hooks.example.com/", ("93.184.215.14",), "https://"),
        ("https:///nohost", (), "no host"),
    ],
)
def test_forbidden_urls_are_refused(url: str, addresses: tuple[str, ...], reason: str) -> None:
    with pytest.raises(WebhookUrlRefused, match=reason) as refused:
        check_url(url, False, resolving_to(*addresses))
    assert "secret" not in str(refused.value)


def test_a_name_that_does_not_resolve_is_refused() -> None:
    def fail(*_: Any, **__: Any) -> Any:
        raise socket.gaierror("no such name")

    with pytest.raises(WebhookUrlRefused, match="does not resolve"):
        check_url("https://nowhere.example.com/", False, fail)


def test_allow_insecure_permits_loopback_only() -> None:
    assert check_url("http://127.0.0.1:9000/x", True, resolving_to()).address == "127.0.0.1"
    assert check_url("https://localhost/x", True, resolving_to("127.0.0.1", "::1")).port == 443
    for url, addresses in [
        ("http://10.0.0.1/", ()),
        ("https://169.254.169.254/", ()),
        ("http://hooks.example.com/", ("93.184.215.14",)),  # http only for loopback
        ("https://localhost.example.com/", ("10.0.0.5",)),
    ]:
        with pytest.raises(WebhookUrlRefused):
            check_url(url, True, resolving_to(*addresses))
