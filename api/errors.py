"""One shape for every error the API answers: ``{"detail": "...", "errors": {field: [...]}}``.

``detail`` is always a sentence a person can read; ``errors`` (validation failures only)
holds the console's own messages keyed by field, ``non_field_errors`` for the rest. Django's
``ValidationError`` raised by a model's ``clean()`` or a service function, and
``ProtectedError`` raised by a delete, are answered like the console's pages answer them.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import ProtectedError
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

NON_FIELD = "non_field_errors"


class Conflict(exceptions.APIException):
    """The request is valid but the resource's state does not allow it now (409)."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "The resource's current state does not allow this."
    default_code = "conflict"


class ErrorSerializer(serializers.Serializer):
    """Every 4xx answer."""

    detail = serializers.CharField(help_text="What went wrong, in a sentence.")
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Validation failures only: the messages of each field (non_field_errors for the whole input).",
    )


def flatten(data, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error structure as ``{"field" or "field.0.sub": [messages]}``."""
    found: dict[str, list[str]] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            for inner, messages in flatten(value, name).items():
                found.setdefault(inner, []).extend(messages)
    elif isinstance(data, list):
        if all(not isinstance(item, dict | list) for item in data):
            found[prefix or NON_FIELD] = [str(item) for item in data]
        else:
            for index, item in enumerate(data):
                if item:
                    for inner, messages in flatten(item, f"{prefix}.{index}" if prefix else str(index)).items():
                        found.setdefault(inner, []).extend(messages)
    else:
        found[prefix or NON_FIELD] = [str(data)]
    return found


def summary(errors: dict[str, list[str]]) -> str:
    parts = [
        f"{messages[0]}" if field == NON_FIELD else f"{field}: {messages[0]}"
        for field, messages in errors.items()
        if messages
    ]
    return "Nothing was saved: " + " ".join(parts) if parts else "The input is not valid."


def django_errors(exc: DjangoValidationError) -> dict[str, list[str]]:
    if hasattr(exc, "error_dict"):
        return {(NON_FIELD if k == "__all__" else k): list(v) for k, v in exc.message_dict.items()}
    return {NON_FIELD: list(exc.messages)}


def exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(django_errors(exc))
    elif isinstance(exc, ProtectedError):
        blockers = ", ".join(sorted({str(obj) for obj in exc.protected_objects})[:5])
        exc = Conflict(f"It cannot be deleted while these depend on it: {blockers}.")
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        errors = flatten(response.data)
        response.data = {"detail": summary(errors), "errors": errors}
    elif isinstance(response.data, dict) and "detail" in response.data:
        response.data = {"detail": str(response.data["detail"])}
    else:
        response.data = {"detail": str(response.data)}
    return response


def error_response(detail: str, code: int = status.HTTP_409_CONFLICT) -> Response:
    return Response({"detail": detail}, status=code)


def not_found(request, exception=None):
    """404 for a URL no view matches: JSON under /api/, the console's page elsewhere."""
    from django.http import JsonResponse
    from django.views.defaults import page_not_found

    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return page_not_found(request, exception)
