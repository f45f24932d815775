"""OpenAPI post-processing: every operation documents the API's one error shape."""

from __future__ import annotations

ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string", "example": "validation_error"},
                "message": {"type": "string"},
                "details": {"type": "object", "additionalProperties": True},
            },
            "required": ["code", "message", "details"],
        }
    },
    "required": ["error"],
}

ERROR_RESPONSES = {
    "400": "Invalid input: `details` names each field and what is wrong with it.",
    "401": "Missing, invalid, expired or revoked credentials.",
    "403": "Signed in, but not allowed to do this.",
    "404": "No such object, or not visible to you.",
    "405": "Method not allowed.",
    "406": "Cannot produce the requested content type.",
    "413": "Request body over the configured limit.",
    "415": "Unsupported request content type.",
    "429": "Too many requests.",
}


def add_error_responses(result: dict, generator, request, public) -> dict:
    """drf-spectacular postprocessing hook (SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"])."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    reference = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for status, description in ERROR_RESPONSES.items():
                operation["responses"].setdefault(status, {"description": description, "content": reference})
    return result
