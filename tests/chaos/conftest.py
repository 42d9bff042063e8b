"""The chaos suite starts real servers with the integration tests' helpers (``servers``,
``testmodels``): make them importable here."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "integration" / "serving"))
