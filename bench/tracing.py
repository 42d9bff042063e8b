"""What tracing costs one single-row request, in process: off (the default) and on.

    .venv/bin/python bench/tracing.py [--core 0] [-n 5000]
    PYTHONPATH=/tmp/before .venv/bin/python bench/tracing.py --off-only   # another tree's "off"

Off has to cost nothing measurable: run ``--off-only`` from a tree without tracing (exported
with ``git archive``) and from this one, alternately, and compare the rows. On: a provider
with the SDK's ``BatchSpanProcessor`` and an exporter that drops what it gets (no network), so
the rows are the SDK's work on the request path (three or four spans, context) plus its export
thread's share of the core; with 1% of traces sampled, most requests pay only for the sampling
decision and a non-recording span. Requests go through the ASGI app as in ``bench/hotpath.py``, with the
replica stubbed out (the server's own work) and with a real replica process.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hotpath
import serving


async def measure(n: int, off_only: bool) -> list[tuple[str, float]]:
    import seaway
    from seaway.packaging.reader import open_package
    from seaway.serving.dataplane import DataPlane
    from seaway.serving.http.app import create_app
    from seaway.serving.metrics import Metrics
    from seaway.serving.model import ServedModel, ServingOptions

    models, x = serving.train_models()
    model = models["lr"]
    body = serving.request_body([float(v) for v in x[7]])
    route = "/v2/models/lr/infer"
    tmp = Path(tempfile.mkdtemp(prefix="seaway-tracing-"))
    package = seaway.save_model(model, tmp / "package", sample_input=x[:20])
    served = ServedModel(
        "lr", "1", str(package.path), open_package(package.path).manifest, ServingOptions()
    )
    await served.start()
    results: list[tuple[str, float]] = []
    try:
        plane = DataPlane(request_timeout=30.0)
        plane.publish([served])
        apps: list[tuple[str, Any, Any]] = [("off", create_app(plane, metrics=Metrics()), None)]
        if not off_only:
            for label, ratio in (("on", 1.0), ("on, 1% sampled", 0.01)):
                traced = _tracing(ratio)
                apps.append((label, create_app(plane, metrics=Metrics(), tracing=traced), traced))
        real = served.pool.call
        outputs = {"predict": model.predict(x[7:8])}

        async def no_replica(inputs: Any, wanted: Any) -> dict[str, Any]:
            return dict(outputs)

        for label, app, traced in apps:
            if traced is not None:
                traced.install()
            served.pool.call = no_replica  # type: ignore[method-assign]
            call = hotpath.asgi_call(app, route, body)
            stubbed = await hotpath.timed_async(call, n)
            served.pool.call = real  # type: ignore[method-assign]
            whole = await hotpath.timed_async(call, max(n // 5, 200))
            results.append((f"tracing {label}: whole request, replica call stubbed out", stubbed))
            results.append((f"tracing {label}: whole request, real replica", whole))
            if traced is not None:
                traced.close()
    finally:
        await served.stop()
    return results


def _tracing(ratio: float) -> Any:
    """What ``OTEL_TRACES_SAMPLER=parentbased_traceidratio`` with this ratio would build."""
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )
    from opentelemetry.sdk.trace.sampling import ParentBasedTraceIdRatio

    from seaway.serving.otel import Tracing

    class Drop(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider(sampler=ParentBasedTraceIdRatio(ratio), shutdown_on_exit=False)
    provider.add_span_processor(BatchSpanProcessor(Drop()))
    return Tracing(provider, owned=True)


def main() -> None:
    parser = argparse.ArgumentParser(description="What tracing costs a request.")
    parser.add_argument("--core", type=int, default=0)
    parser.add_argument("-n", type=int, default=5000, help="calls per round [5000]")
    parser.add_argument("--off-only", action="store_true", help="only the untraced rows")
    args = parser.parse_args()
    os.sched_setaffinity(0, {args.core})
    try:
        import uvloop
    except ImportError:
        results = asyncio.run(measure(args.n, args.off_only))
    else:
        results = uvloop.run(measure(args.n, args.off_only))
    print(f"lr: microseconds per single-row request, in process, core {args.core}")
    for name, us in results:
        print(f"{us:9.1f}  {name}")


if __name__ == "__main__":
    main()
