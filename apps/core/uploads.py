"""Upload limits checked before Django reads a request body."""

from django.http import HttpRequest


def request_too_large(request: HttpRequest, limit_bytes: int) -> bool:
    """True when the declared body is over the limit (answer 413 without reading it)."""
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0) > limit_bytes
    except ValueError:
        return False
