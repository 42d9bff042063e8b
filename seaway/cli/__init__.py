"""The ``seaway`` command line: Typer commands that build objects and call the library."""
