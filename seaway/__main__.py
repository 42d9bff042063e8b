"""``python -m seaway`` runs the CLI."""

from seaway.cli.main import run

run()
