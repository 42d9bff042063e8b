"""``POST /v2/models/{deployment}/outcome``: what happened after an answer, for an A/B test.

An outcome is a number (1 for a conversion, 0 for none, or any measure such as revenue) about
one answered request, named by its request id (its V2 ``id``, else its ``X-Request-ID``), or
about the sticky key an A/B test assigns versions by (a user id). It is counted for the version
that answered. A request id this server does not remember (another server answered it, or it is
too old) is not an error: it comes back as ``unmatched`` so the client can tell.

    {"outcomes": [{"id": "7f3c...", "value": 1}, {"key": "user-42", "value": 0}]}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from seaway.errors import BodyTooLargeError, InvalidInputError, quoted
from seaway.routing.stats import MAX_MAGNITUDE

#: outcomes one request may hold (the body's own byte limit is ``MAX_BODY_BYTES``)
MAX_OUTCOMES = 10_000
MAX_BODY_BYTES = 2 * 1024 * 1024
_FIELDS = {"id", "key", "value"}


@dataclass(frozen=True)
class Outcome:
    value: float
    request_id: str | None = None
    key: str | None = None


def outcomes_from_body(doc: Any, *, deployment: str, sticky: bool) -> list[Outcome]:
    """The outcomes of a request body; anything else names the field that is wrong. ``sticky``:
    the deployment assigns versions by a key, so outcomes may name keys."""
    if not isinstance(doc, dict):
        raise InvalidInputError('an outcome body is a JSON object: {"outcomes": [...]}')
    unknown = sorted(set(doc) - {"outcomes"})
    if unknown:
        raise InvalidInputError(
            f"unknown field(s) {unknown} in the outcome body; send "
            '{"outcomes": [{"id": REQUEST_ID, "value": 1}, ...]}'
        )
    items = doc.get("outcomes")
    if not isinstance(items, list) or not items:
        raise InvalidInputError(
            '"outcomes" must be a non-empty list of {"id": REQUEST_ID, "value": NUMBER} '
            '(or {"key": STICKY_KEY, "value": NUMBER})'
        )
    if len(items) > MAX_OUTCOMES:
        raise BodyTooLargeError(
            f"an outcome request holds at most {MAX_OUTCOMES:,} outcomes, this one "
            f"{len(items):,}; send them in several requests"
        )
    return [_outcome(item, n, deployment, sticky) for n, item in enumerate(items)]


def _outcome(item: Any, n: int, deployment: str, sticky: bool) -> Outcome:
    where = f"outcomes[{n}]"
    if not isinstance(item, dict):
        raise InvalidInputError(f'{where} must be an object {{"id": REQUEST_ID, "value": NUMBER}}')
    unknown = sorted(set(item) - _FIELDS)
    if unknown:
        raise InvalidInputError(
            f"{where} has unknown field(s) {unknown}; it takes id or key, and value"
        )
    if ("id" in item) == ("key" in item):
        raise InvalidInputError(
            f'{where} needs exactly one of "id" (the request id of the answer) and "key" (the '
            "sticky key of an A/B test)"
        )
    value = item.get("value")
    if isinstance(value, bool):
        value = float(value)
    # checked here, before any is counted, so a batch is taken whole or refused whole
    if not isinstance(value, int | float) or not abs(value) <= MAX_MAGNITUDE:  # NaN too
        raise InvalidInputError(
            f"{where}.value must be a finite number of at most {MAX_MAGNITUDE:g} in size (1 for "
            f"a conversion, 0 for none, or a measure); got "
            f"{quoted(value) if value is not None else 'none'}"
        )
    if "id" in item:
        return Outcome(float(value), request_id=_text(item["id"], f"{where}.id"))
    if not sticky:
        raise InvalidInputError(
            f"{where}.key: deployment {quoted(deployment)} assigns versions at random, not by a "
            'sticky key; name the answer by its request id ("id") instead'
        )
    return Outcome(float(value), key=_text(item["key"], f"{where}.key"))


def _text(value: Any, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        raise InvalidInputError(f"{where} must be a non-empty string; got {quoted(value)}")
    return str(value)
