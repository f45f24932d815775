"""Which URLs a webhook channel may post to: the guard against SSRF.

A webhook URL is typed in by users, and Causeway posts to it from inside the network, so an
unchecked URL would let anyone with a channel reach internal services or the cloud metadata
endpoint. The check runs when a channel is saved and again before every delivery, because a
host's DNS answer can change after the channel was accepted.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError

# Looked up through this module so tests can stub DNS here without touching `requests`.
getaddrinfo = socket.getaddrinfo

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def check_webhook_url(url: str, *, allow_private: bool | None = None) -> None:
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
    for address in _resolve(host, port):
        problem = _forbidden_reason(address, allow_private=allow_private)
        if problem:
            raise ValidationError(f"The webhook host {host} resolves to {address}, {problem}; that is not allowed.")


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
