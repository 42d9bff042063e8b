"""The ``seaway`` command line: Typer commands that build objects and call the library."""

import sys as _sys

if _sys.argv[1:2] == ["serve"]:
    # `seaway serve`: the replicas' zygote (runtime/spawner.py) starts importing numpy, pandas and
    # the runtime now, beside the CLI's own imports; `serve` tells it the models' frameworks.
    from seaway.runtime import spawner as _spawner

    _spawner.start_early()
elif _sys.argv[1:3] == ["batch", "run"]:
    # `seaway batch run`: the workers' zygote (batch/forked.py) imports pyarrow, scikit-learn and
    # skops now, beside the CLI's own imports; the workers are forked from it
    from seaway.batch import forked as _forked

    _forked.start_early()
