"""Seaway's one exception tree.

Every error a user can see is a ``SeawayError`` whose message names what is wrong and how to fix
it. Foreign exceptions (SQLAlchemy, fsspec, framework loaders) are translated at the boundary where
they happen; nothing here imports a transport or a web framework, so the serving layer maps these
classes to HTTP and gRPC codes with two small tables.

    SeawayError
    ├── ConfigError                  bad setting, unreadable config file
    ├── MissingDependencyError       an optional extra is not installed (names the extra)
    ├── InvalidInputError            inputs do not match a model's signature
    │   ├── UnsupportedMediaTypeError a request body's Content-Type is not one we read (HTTP 415)
    │   ├── BodyTooLargeError        a request body over the server's limit (HTTP 413)
    │   ├── BatchInputError          a batch input cannot be read as asked (missing, wrong columns)
    │   ├── RowRejectedError         batch ``--on-error fail``: the first rejected row stops the job
    │   └── ValidationFailedError    a version misses its validation thresholds (names the figures)
    ├── UnsupportedOperationError    the model cannot do this (predict_proba on a regressor)
    ├── PackagingError
    │   ├── UnsupportedModelError    no flavor knows this object
    │   ├── SignatureError           sample input unusable, or the model cannot predict on it
    │   ├── PackageIntegrityError    tampered, incomplete or corrupt package (names the file)
    │   ├── UntrustedPackageError    loading would run pickle or packaged code; needs trusted=True
    │   └── MlflowImportError        an MLflow model folder that cannot be imported
    ├── ModelLoadError               the framework failed to load a verified package
    ├── RegistryError
    │   ├── InvalidURIError          a model URI that cannot be parsed
    │   ├── NotFoundError            unknown model, version or alias
    │   ├── ConflictError            the operation clashes with current state (alias in use, ...)
    │   └── RegistryUnavailableError the database cannot be reached or is not a Seaway registry
    │       └── SchemaMismatchError  the database's schema is older or newer than this Seaway
    ├── ArtifactStoreError           the artifact store cannot be read or written
    ├── MonitoringError              drift cannot be measured: what it compares is missing
    │   ├── NoReferenceProfileError  the version was logged without reference_data
    │   └── NoLoggedDataError        nothing of the version was logged in the window
    ├── AuthError
    │   ├── AuthenticationError      no API key, or one that is unknown or revoked (HTTP 401)
    │   └── PermissionDeniedError    a valid key without the scope this call needs (HTTP 403)
    ├── ServingError
    │   ├── ServerBusyError          a bounded queue is full: retry later (HTTP 429)
    │   │   └── RateLimitedError     an API key's request rate is over its limit (HTTP 429)
    │   ├── ModelUnavailableError    no healthy replica can serve the model now (HTTP 503)
    │   │   ├── ModelOutOfMemoryError the model ran out of memory; its replica is recycled (503)
    │   │   ├── BatcherClosedError   a retired version's batcher: its successor takes the request
    │   │   └── ReplicaDiedError     a replica went away holding a call, not by the call's fault
    │   │       └── ReplicaCrashedError it exited by itself while predicting (the pool answers
    │   │                            the caller with ModelCrashedError)
    │   ├── InferenceTimeoutError    the request did not finish within its deadline (HTTP 504)
    │   │   ├── CallTimeoutError     one model call ran past the call timeout: hung or too slow
    │   │   └── ReplicaTimeoutError  a replica still holds a call past its timeout (the pool
    │   │                            answers the caller with CallTimeoutError)
    │   └── PredictionError          the model raised on this input (HTTP 400, as Triton does)
    │       └── ModelCrashedError    the model crashed its replica on this input alone (400)
    └── BatchWorkerError             a batch worker process died (killed, out of memory, a crash)

Cancellation is not an error, and stays outside ``SeawayError`` on purpose: it must unwind
through every ``except Exception`` exactly as Ctrl-C does.

    KeyboardInterrupt                (Python's)
    └── JobCancelledError            the scheduler stops a running batch job: recorded as
                                     ``interrupted`` (resumable), as Ctrl-C is, not ``failed``

Warnings, for what works but probably not as the user meant:

    UserWarning                      (Python's)
    └── SeawayWarning                tests turn it into an error (pyproject's filterwarnings)

The replica and batcher errors above are the runtime's own signals between its layers; the
server maps each by its base class, so none needs an entry of its own in the status tables.
"""

from __future__ import annotations

from collections.abc import Iterable


class SeawayError(Exception):
    """Base of every error Seaway raises on purpose."""


class SeawayWarning(UserWarning):
    """Something works but probably not as the user intended."""


class ConfigError(SeawayError):
    pass


class MissingDependencyError(SeawayError, ImportError):
    """An optional framework is needed; the message names the extra that provides it."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        self.package = package
        self.extra = extra
        self.purpose = purpose
        super().__init__(
            f"{purpose} needs the '{package}' package, which is not installed. "
            f"Install it with: pip install 'seaway[{extra}]'"
        )

    def __reduce__(self) -> tuple[type, tuple[str, str, str]]:
        # errors cross process boundaries (worker pools, Ray): rebuild from the same arguments
        return (type(self), (self.package, self.extra, self.purpose))


class InvalidInputError(SeawayError, ValueError):
    pass


class UnsupportedMediaTypeError(InvalidInputError):
    pass


class BodyTooLargeError(InvalidInputError):
    pass


class UnsupportedOperationError(SeawayError, AttributeError):
    pass


class PackagingError(SeawayError):
    pass


class UnsupportedModelError(PackagingError, TypeError):
    pass


class SignatureError(PackagingError):
    pass


class PackageIntegrityError(PackagingError):
    pass


class UntrustedPackageError(PackagingError):
    pass


class MlflowImportError(PackagingError):
    pass


class ModelLoadError(SeawayError):
    pass


class RegistryError(SeawayError):
    pass


class InvalidURIError(RegistryError, ValueError):
    pass


class NotFoundError(RegistryError, LookupError):
    pass


class ConflictError(RegistryError):
    pass


class RegistryUnavailableError(RegistryError):
    pass


class SchemaMismatchError(RegistryUnavailableError):
    """The registry schema and this Seaway differ; the message says what to run."""

    def __init__(self, message: str, *, current: str | None, head: str) -> None:
        super().__init__(message)
        self.current = current
        self.head = head


class ArtifactStoreError(SeawayError):
    pass


class MonitoringError(SeawayError):
    pass


class NoReferenceProfileError(MonitoringError):
    pass


class NoLoggedDataError(MonitoringError):
    pass


class AuthError(SeawayError):
    pass


class AuthenticationError(AuthError):
    pass


class PermissionDeniedError(AuthError):
    pass


class ServingError(SeawayError):
    pass


class ServerBusyError(ServingError):
    """Carries ``retry_after`` seconds, sent as the ``Retry-After`` header."""

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def __reduce__(self) -> tuple[type, tuple[str, float]]:
        return (type(self), (str(self), self.retry_after))


class RateLimitedError(ServerBusyError):
    pass


class ModelUnavailableError(ServingError):
    pass


class ModelOutOfMemoryError(ModelUnavailableError):
    """A server-side failure, not the input's fault as far as anyone can tell: retry later."""


class InferenceTimeoutError(ServingError):
    pass


class CallTimeoutError(InferenceTimeoutError):
    """A model call outlived ``call_timeout``: its replica was killed as hung and restarted."""


class BatcherClosedError(ModelUnavailableError):
    """The batcher was closed before the request was queued: a newer version may take it."""


class ReplicaDiedError(ModelUnavailableError):
    """The replica process went away while holding a call, not by the call's fault (killed from
    outside, stopped, or gone before the call reached it): the caller may retry elsewhere."""


class ReplicaCrashedError(ReplicaDiedError):
    """The replica process exited on its own while predicting: the call's inputs likely made it
    crash, and would crash any other replica too."""

    def __init__(self, message: str, exit_code: int | None) -> None:
        super().__init__(message)
        self.exit_code = exit_code

    def __reduce__(self) -> tuple[type, tuple[str, int | None]]:
        return (type(self), (str(self), self.exit_code))


class ReplicaTimeoutError(InferenceTimeoutError):
    """No answer within the call's timeout; the replica is still busy (or hung) with it."""


class PredictionError(ServingError):
    pass


class ModelCrashedError(PredictionError):
    """The replica process exited on its own while predicting on this request alone.

    A 400, as other model failures on an input: the same input would crash the next replica
    too, so it is never retried (a client should not retry it either).
    """


class BatchInputError(InvalidInputError):
    """An input that cannot be read as asked (missing, empty, unreadable, wrong columns)."""


class RowRejectedError(InvalidInputError):
    """``--on-error fail``: the first rejected row stops the job."""


class ValidationFailedError(InvalidInputError):
    """A model version scored on held-out data misses a threshold (``seaway validate``, or a
    deployment spec's ``validation`` gate at apply): the message gives each figure against its
    threshold, so the user sees how far off it is."""


class BatchWorkerError(SeawayError):
    """A worker process died (killed, out of memory, a crashing model)."""


class JobCancelledError(KeyboardInterrupt):
    """Raised inside a running job when the scheduler is told to stop it: ``run_job`` records a
    ``KeyboardInterrupt`` as ``interrupted`` (resumable) rather than ``failed``. Not a
    ``SeawayError``: cancellation must pass every ``except Exception`` on its way out."""


# -- keeping messages short ---------------------------------------------------------------------
# Messages quote what the user sent (names, values), and a request can send 100,000 names or one
# name a megabyte long: a message that quotes them whole breaks the client that receives it (gRPC
# status details travel in a header). Every message that quotes user input goes through these.

#: At most this many names of a list are quoted; the rest are counted.
SHOWN_NAMES = 5
#: A quoted name or value longer than this is cut, with ``...`` marking the cut.
SHOWN_CHARS = 64


def quoted(value: object, limit: int = SHOWN_CHARS) -> str:
    """``repr(value)`` cut to about ``limit`` characters (a long one ends in ``...``)."""
    text = repr(value[: limit + 1] if isinstance(value, str | bytes) else value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def listed(values: Iterable[object], shown: int = SHOWN_NAMES) -> str:
    """A list of names as ``['a', 'b', 'c'] and 99997 more``: the first ``shown``, each cut by
    :func:`quoted`, then how many were left out."""
    items = values if isinstance(values, list) else list(values)
    head = "[" + ", ".join(quoted(item) for item in items[:shown]) + "]"
    rest = len(items) - shown
    return f"{head} and {rest} more" if rest > 0 else head


#: The longest message a transport sends (the last guard, for text quoted from elsewhere such as a
#: model's own exception).
MAX_MESSAGE_CHARS = 1024


def brief(message: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``message`` cut to ``limit`` characters, saying that it was cut."""
    if len(message) <= limit:
        return message
    note = f"... (cut from {len(message)} characters)"
    return message[: limit - len(note)] + note
