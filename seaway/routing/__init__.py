"""Routing: how a deployment splits its traffic among versions, and what it measures per version.

Layer 4 of the design, beside monitoring: pure policies and statistics with injected randomness,
so every strategy (canary, A/B, shadow, blue/green, progressive rollout) is unit-tested without a
server. Nothing here imports the registry, the runtime or the server: the registry stores specs
and counters as opaque JSON, and the serving layer calls in here on its hot path.

``spec`` reads and checks a deployment spec, ``policy`` picks the version that answers a
request, ``stats`` keeps the mergeable per-version counters that servers flush to the registry.
"""
