"""A feedback body's wrong value is named as it was sent: a request id of the wrong type is not
"no request_id", and an item that is a number is not "a int"."""

from __future__ import annotations

from typing import Any

import pytest

from seaway.errors import InvalidInputError
from seaway.monitoring.feedback import items_from_body


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"items": [1]}, "feedback item 0 is a number; give an object"),
        ({"items": ["x"]}, "feedback item 0 is a string; give an object"),
        ({"items": [{"request_id": 1.5, "label": 1}]}, "feedback item 0 has request_id 1.5;"),
        ({"items": [{"request_id": {"a": 1}, "label": 1}]}, "has request_id {'a': 1};"),
        ({"items": [{"label": 1}]}, "feedback item 0 has no request_id"),
    ],
)
def test_wrong_values_are_named_as_sent(body: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        items_from_body(body)
    assert message in str(info.value)
