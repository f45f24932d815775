from __future__ import annotations

import re
import uuid

from apps.core import request_context

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestContextMiddleware:
    """Gives every request an id (kept from `X-Request-ID` when well-formed) and records the
    client address for the audit trail. The id is echoed back in the response header."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        token = request_context.activate(
            request_context.RequestContext(request_id=request_id, ip_address=client_ip(request))
        )
        try:
            response = self.get_response(request)
        finally:
            request_context.reset(token)
        response["X-Request-ID"] = request_id
        return response


def client_ip(request) -> str | None:
    # REMOTE_ADDR only: trusting X-Forwarded-For would let any client forge its audit address.
    # Behind a proxy, gunicorn's forwarded_allow_ips rewrites REMOTE_ADDR (platform/gunicorn.conf.py).
    return request.META.get("REMOTE_ADDR") or None
