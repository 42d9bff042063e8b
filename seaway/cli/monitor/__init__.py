"""``seaway monitor``: the prediction log, drift, performance, alerts and reports of a model.

One module per command (or small group of them) beside this file; each registers itself on ``app``.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Watch served and batch-scored models: drift, performance, feedback, alerts, reports.",
    no_args_is_help=True,
)

# each module registers its commands on ``app`` when imported, in the order --help lists them
from seaway.cli.monitor import log, compact, drift, performance, feedback, export, alerts  # noqa: E402, F401, I001
