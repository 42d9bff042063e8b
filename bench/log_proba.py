"""What logging a classifier's probabilities costs (``--log-proba``), side by side.

    .venv/bin/python bench/log_proba.py [--rounds 6] [--seconds 5]

Three ``seaway serve`` processes of the serving benchmark's LogisticRegression, all loaded at
once on one core, each under its own ``wrk -c1`` (the method of ``bench/sidebyside.py``, whose
round it reuses): logging off, logging every request (``--log-sample 1.0 --no-log-proba``), and
logging every request with its probabilities (``--log-proba``: each request also asks the model
for ``predict_proba``, which its answer leaves out). Compared: CPU per request and wrk's p50.
"""

from __future__ import annotations

import argparse
import os
import pickle
import random
import statistics
import sys
import tempfile
from pathlib import Path

import serving  # bench/serving.py, beside this file
from sidebyside import one_round

VARIANTS = {
    "off": [],
    "log": ["--log-sample", "1.0", "--no-log-proba"],
    "log+proba": ["--log-sample", "1.0", "--log-proba"],
}


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=int, default=5, help="per round [5]")
    parser.add_argument("--server-core", type=int, default=0)
    parser.add_argument("--client-core", type=int, default=1)
    args = parser.parse_args()
    os.sched_setaffinity(0, {args.client_core})
    with tempfile.TemporaryDirectory(prefix="seaway-logproba-") as tmp_name:
        tmp = Path(tmp_name)
        os.chdir(tmp)
        env = {**os.environ, "SEAWAY_HOME": str(tmp / "home"), "PYTHONUNBUFFERED": "1"}
        os.environ["SEAWAY_HOME"] = env["SEAWAY_HOME"]
        models, x = serving.train_models()
        import seaway

        seaway.log_model(models["lr"], "lr", sample_input=x[:20], reference_data=x)
        (tmp / "lr.pkl").write_bytes(pickle.dumps(models["lr"]))
        servers = []
        for name, flags in VARIANTS.items():
            port = serving.free_port()
            argv = serving.server_argv("seaway", port, ["lr"], tmp) + flags
            if flags:
                argv += ["--log-store", str(tmp / f"predictions-{name}")]
            servers.append(serving.Server(name, port, argv, tmp / f"{name}.log"))
        rng = random.Random(0)
        bodies = [
            serving.request_body([float(v) for v in x[rng.randrange(len(x))]])
            for _ in range(serving.BODY_POOL)
        ]
        script = serving.wrk_script(tmp / "lr.lua", "/v2/models/lr/infer", bodies)
        rounds = []
        with serving.servers_running(servers, args.server_core, env):
            one_round(servers, script, 2, args.client_core)  # warm-up
            for index in range(args.rounds):
                rounds.append(one_round(servers, script, args.seconds, args.client_core))
                cells = [
                    f"{s.name}: {cpu:.0f} µs, p50 {p50:.3f} ms"
                    for s, (cpu, _, p50) in zip(servers, rounds[-1], strict=True)
                ]
                print(f"round {index + 1}: " + " | ".join(cells), flush=True)
    print(f"\nmedians over {args.rounds} rounds (LogisticRegression, c=1 each, one core):")
    for column, server in enumerate(servers):
        cpu = statistics.median(r[column][0] for r in rounds)
        ratio = statistics.median(r[column][0] / r[0][0] for r in rounds)
        p50 = statistics.median(r[column][2] for r in rounds)
        p50_ratio = statistics.median(r[column][2] / r[0][2] for r in rounds)
        print(
            f"  {server.name:<10} {cpu:6.0f} µs/request  x{ratio:.3f} of off   "
            f"p50 {p50:.3f} ms  x{p50_ratio:.3f} of off"
        )


def main() -> None:
    try:
        run()
    except serving.BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
