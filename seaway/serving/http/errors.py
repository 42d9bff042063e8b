"""Seaway errors -> HTTP status codes. The one table; the most specific class wins (MRO order)."""

from __future__ import annotations

from seaway import errors

STATUS: dict[type[BaseException], int] = {
    errors.UnsupportedMediaTypeError: 415,
    errors.BodyTooLargeError: 413,
    errors.InvalidInputError: 400,
    errors.InvalidURIError: 400,
    errors.UnsupportedOperationError: 400,
    errors.PredictionError: 400,  # as Triton and MLflow: the model failed on this input
    errors.ModelLoadError: 400,  # repository load: the version named cannot be served
    errors.PackagingError: 400,
    errors.ConfigError: 400,
    errors.AuthenticationError: 401,
    errors.PermissionDeniedError: 403,
    errors.NotFoundError: 404,
    errors.ConflictError: 409,
    errors.ServerBusyError: 429,
    errors.ModelUnavailableError: 503,
    errors.RegistryUnavailableError: 503,
    errors.ArtifactStoreError: 503,
    errors.InferenceTimeoutError: 504,
}


def status_for(exc: BaseException) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def retry_after(exc: BaseException) -> str | None:
    if isinstance(exc, errors.ServerBusyError):
        return str(max(1, round(exc.retry_after + 0.49)))
    return None


def error_headers(exc: BaseException, status: int) -> dict[str, str]:
    """``Retry-After`` on 429s, ``WWW-Authenticate`` on 401s."""
    headers = {}
    if (after := retry_after(exc)) is not None:
        headers["retry-after"] = after
    if status == 401:
        headers["www-authenticate"] = 'Bearer realm="seaway"'
    return headers
