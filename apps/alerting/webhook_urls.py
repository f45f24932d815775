"""Which URLs a webhook channel may post to, and posting to them: the guard against SSRF.

A webhook URL is typed in by users, and Causeway posts to it from inside the network, so an
unchecked URL would let anyone with a channel reach internal services or the cloud metadata
endpoint. The check runs when a channel is saved and again before every delivery, because a
host's DNS answer can change after the channel was accepted.

A delivery connects to an address that check approved, never to a second DNS answer: a name
that resolves to a public address for the check and to an internal one a moment later (DNS
rebinding) would otherwise pass the check and still be reached. HTTPS still verifies the
certificate against the host name (urllib3's server_hostname and assert_hostname).
"""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import certifi
import urllib3
from django.conf import settings
from django.core.exceptions import ValidationError

# Looked up through this module so tests can stub DNS here; deliveries never resolve again.
getaddrinfo = socket.getaddrinfo

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class WebhookTarget:
    """A checked webhook URL: where to connect (`addresses`, all of them allowed) and what to
    say there (the Host header, TLS name and request target of the URL as typed)."""

    scheme: str
    hostname: str
    port: int
    host_header: str
    request_target: str
    addresses: tuple[IPAddress, ...]


def check_webhook_url(url: str, *, allow_private: bool | None = None) -> WebhookTarget:
    """Raise ValidationError (with a message naming the problem) unless `url` is an http(s) URL
    without credentials whose host resolves only to public addresses. `allow_private` (default:
    the ALERTING_WEBHOOK_ALLOW_PRIVATE setting) admits loopback and private-network receivers."""
    if allow_private is None:
        allow_private = getattr(settings, "ALERTING_WEBHOOK_ALLOW_PRIVATE", False)
    parts = urlsplit(url or "")
    if parts.scheme.lower() not in {"http", "https"}:
        raise ValidationError(f"Webhook URLs must use http or https, not {parts.scheme or 'no scheme'!r}.")
    if "@" in parts.netloc:
        raise ValidationError("Webhook URLs may not contain a user name or password (user:pass@).")
    host = parts.hostname
    if not host:
        raise ValidationError("The webhook URL has no host.")
    try:
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError as exc:
        raise ValidationError("The webhook URL has an invalid port.") from exc
    addresses = _resolve(host, port)
    for address in addresses:
        problem = _forbidden_reason(address, allow_private=allow_private)
        if problem:
            raise ValidationError(f"The webhook host {host} resolves to {address}, {problem}; that is not allowed.")
    return WebhookTarget(
        scheme=parts.scheme.lower(),
        hostname=host,
        port=port,
        host_header=parts.netloc,
        request_target=(parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
        addresses=tuple(dict.fromkeys(addresses)),
    )


def post(
    url: str, *, body: bytes, headers: dict[str, str], timeout: float, max_response_bytes: int
) -> tuple[int, bytes]:
    """POST `body` to `url` once, at an address the check approved; returns the HTTP status and
    at most `max_response_bytes` of the answer. Redirects are not followed (a 3xx could point
    anywhere, past the check). Raises ValidationError when the URL is refused, and urllib3's or
    the socket's errors when no approved address takes the request."""
    target = check_webhook_url(url)
    failure: Exception | None = None
    for address in target.addresses:
        pool = _pool(target, address, timeout)
        try:
            response = pool.urlopen(
                "POST",
                target.request_target,
                body=body,
                headers={**headers, "Host": target.host_header},
                redirect=False,
                retries=False,
                preload_content=False,
                assert_same_host=False,
            )
        except urllib3.exceptions.NewConnectionError as exc:
            # Nothing was sent: try the next address, as a client walking the DNS answer would.
            failure = exc
            pool.close()
            continue
        try:
            return response.status, response.read(max_response_bytes, decode_content=True)
        finally:
            response.release_conn()
            pool.close()
    assert failure is not None  # check_webhook_url returns at least one address
    raise failure


def _pool(target: WebhookTarget, address: IPAddress, timeout: float) -> urllib3.HTTPConnectionPool:
    options = {"host": str(address), "port": target.port, "timeout": urllib3.Timeout(timeout), "maxsize": 1}
    if target.scheme == "http":
        return urllib3.HTTPConnectionPool(**options)
    return urllib3.HTTPSConnectionPool(
        **options,
        cert_reqs="CERT_REQUIRED",
        # The bundle `requests` would use: REQUESTS_CA_BUNDLE (an internal CA), else certifi's.
        ca_certs=os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or certifi.where(),
        server_hostname=target.hostname,
        assert_hostname=target.hostname,
    )


def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        answers = getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise ValidationError(f"The webhook host {host} could not be resolved.") from exc
    if not answers:
        raise ValidationError(f"The webhook host {host} could not be resolved.")
    # sockaddr[0] is the address; IPv6 link-local answers carry a "%scope" suffix.
    return [ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0]) for *_, sockaddr in answers]


def _forbidden_reason(address: IPAddress, *, allow_private: bool) -> str:
    """Why posting to `address` is refused, or "" when it is allowed."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        # ::ffff:127.0.0.1 reaches 127.0.0.1: judge the IPv4 address it wraps.
        address = address.ipv4_mapped
    # Loopback first: ::1 also counts as "reserved" in the stdlib, yet the setting admits it.
    if address.is_loopback:
        return "" if allow_private else "a loopback address"
    # These are never a legitimate receiver, even on premises (169.254.169.254 is the cloud
    # metadata service), so the setting does not open them.
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_link_local:
        return "a link-local address (e.g. cloud metadata)"
    if address.is_multicast:
        return "a multicast address"
    if address.is_reserved:
        return "a reserved address"
    if allow_private:
        return ""
    if address.is_private:
        return "a private-network address"
    if not address.is_global:
        return "a non-public address"
    return ""
