"""The ``seaway`` command line: Typer commands that build objects and call the library."""

import sys as _sys

if _sys.argv[1:2] == ["serve"]:
    # `seaway serve`: the replicas' zygote (runtime/spawner.py) starts importing numpy, pandas and
    # the runtime now, beside the CLI's own imports; `serve` tells it the models' frameworks.
    from seaway.runtime import spawner as _spawner

    _spawner.start_early()
