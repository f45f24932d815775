"""Errors of the tracking services, carrying MLflow's error codes so the MLflow-compatible API
answers exactly as MLflow's own server does, and the HTML pages can show the same message."""

from __future__ import annotations


class TrackingError(Exception):
    error_code = "INTERNAL_ERROR"
    http_status = 500

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidParameter(TrackingError):
    error_code = "INVALID_PARAMETER_VALUE"
    http_status = 400


class NotFound(TrackingError):
    error_code = "RESOURCE_DOES_NOT_EXIST"
    http_status = 404


class AlreadyExists(TrackingError):
    error_code = "RESOURCE_ALREADY_EXISTS"
    http_status = 400


class Forbidden(TrackingError):
    error_code = "PERMISSION_DENIED"
    http_status = 403


class TooLarge(TrackingError):
    error_code = "RESOURCE_EXHAUSTED"
    http_status = 413
