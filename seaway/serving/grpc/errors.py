"""Seaway errors -> gRPC status codes. The twin of ``serving/http/errors.py``: same classes, the
code a gRPC client expects for each; the most specific class wins (MRO order)."""

from __future__ import annotations

import grpc

from seaway import errors

CODES: dict[type[BaseException], grpc.StatusCode] = {
    errors.InvalidInputError: grpc.StatusCode.INVALID_ARGUMENT,
    errors.BodyTooLargeError: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.InvalidURIError: grpc.StatusCode.INVALID_ARGUMENT,
    errors.UnsupportedOperationError: grpc.StatusCode.INVALID_ARGUMENT,
    errors.PredictionError: grpc.StatusCode.INVALID_ARGUMENT,
    errors.ModelLoadError: grpc.StatusCode.INVALID_ARGUMENT,
    errors.PackagingError: grpc.StatusCode.INVALID_ARGUMENT,
    errors.ConfigError: grpc.StatusCode.INVALID_ARGUMENT,
    errors.AuthenticationError: grpc.StatusCode.UNAUTHENTICATED,
    errors.PermissionDeniedError: grpc.StatusCode.PERMISSION_DENIED,
    errors.NotFoundError: grpc.StatusCode.NOT_FOUND,
    errors.ConflictError: grpc.StatusCode.FAILED_PRECONDITION,
    errors.ServerBusyError: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.ModelUnavailableError: grpc.StatusCode.UNAVAILABLE,
    errors.RegistryUnavailableError: grpc.StatusCode.UNAVAILABLE,
    errors.ArtifactStoreError: grpc.StatusCode.UNAVAILABLE,
    errors.InferenceTimeoutError: grpc.StatusCode.DEADLINE_EXCEEDED,
}


def code_for(exc: BaseException) -> grpc.StatusCode:
    for cls in type(exc).__mro__:
        if cls in CODES:
            return CODES[cls]
    return grpc.StatusCode.INTERNAL
