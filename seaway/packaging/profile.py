"""Placeholder, replaced by the real reference profile."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ReferenceProfile(BaseModel):
    features: dict[str, Any] = {}


def build_profile(data: Any) -> ReferenceProfile:
    return ReferenceProfile()
