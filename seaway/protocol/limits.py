"""Bounds on request shapes that numpy cannot take, checked by every codec before it builds arrays.

numpy refuses arrays of more than 32 dimensions (64 since numpy 2) and arrays whose dimensions
multiply past its index range even when one of them is 0; left to numpy, both surface as a bare
``ValueError`` and the server would answer 500 for a client's mistake.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from seaway.errors import InvalidInputError, listed

#: The most dimensions a tensor may have (numpy 1's limit; numpy 2 allows 64).
MAX_DIMS = 32
#: The most elements the non-zero dimensions of an empty tensor may describe.
MAX_EMPTY_EXTENT = 2**40


def check_shape(shape: Sequence[int], what: str) -> None:
    """Refuse a shape numpy cannot build (``what`` names the tensor)."""
    if len(shape) > MAX_DIMS:
        raise InvalidInputError(
            f"{what} has {len(shape)} dimensions; at most {MAX_DIMS} are supported"
        )
    if 0 in shape and math.prod(dim for dim in shape if dim) > MAX_EMPTY_EXTENT:
        raise InvalidInputError(
            f"{what} has shape {listed(shape, MAX_DIMS)}, whose other dimensions are too large "
            "for an empty tensor"
        )
