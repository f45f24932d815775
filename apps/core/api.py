"""API conventions shared by every app: pagination and the one error shape.

Errors look like: {"error": {"code": "validation_error", "message": "...", "details": {...}}}
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.views import exception_handler as drf_exception_handler


class StandardPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_page_size(self, request):
        # DRF silently ignores a bad page_size; the schema says it is a positive integer, so say so.
        raw = request.query_params.get(self.page_size_query_param)
        if raw is not None:
            try:
                if int(raw) < 1:
                    raise ValueError
            except ValueError:
                raise exceptions.ValidationError({"page_size": "A positive integer."}) from None
        return super().get_page_size(request)


_CODES = {
    status.HTTP_400_BAD_REQUEST: "validation_error",
    status.HTTP_401_UNAUTHORIZED: "not_authenticated",
    status.HTTP_403_FORBIDDEN: "permission_denied",
    status.HTTP_404_NOT_FOUND: "not_found",
    status.HTTP_405_METHOD_NOT_ALLOWED: "method_not_allowed",
    status.HTTP_406_NOT_ACCEPTABLE: "not_acceptable",
    status.HTTP_409_CONFLICT: "conflict",
    status.HTTP_413_REQUEST_ENTITY_TOO_LARGE: "too_large",
    status.HTTP_415_UNSUPPORTED_MEDIA_TYPE: "unsupported_media_type",
    status.HTTP_429_TOO_MANY_REQUESTS: "throttled",
}


def exception_handler(exc, context):
    # Services raise Django's exceptions; turn them into DRF's so they get the same shape.
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(_django_validation_details(exc))
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    details = response.data
    if isinstance(details, dict) and set(details) == {"detail"}:
        message, details = str(details["detail"]), {}
    elif isinstance(exc, exceptions.ValidationError):
        message = "The request has invalid fields." if isinstance(details, dict) else "Invalid request."
        details = details if isinstance(details, dict) else {"non_field_errors": details}
    else:
        message = str(getattr(exc, "detail", exc))
    response.data = {
        "error": {
            "code": _CODES.get(response.status_code, "error"),
            "message": message,
            "details": details,
        }
    }
    return response


def _django_validation_details(exc: DjangoValidationError):
    if hasattr(exc, "error_dict"):
        return {field: [str(m) for m in messages] for field, messages in exc.message_dict.items()}
    return {"non_field_errors": exc.messages}


@csrf_exempt  # answers every method under /api/v1/ with JSON; there is nothing to protect
def api_not_found(request, *args, **kwargs):
    from django.http import JsonResponse

    return JsonResponse({"error": {"code": "not_found", "message": "No such API endpoint.", "details": {}}}, status=404)
