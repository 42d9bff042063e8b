"""The controller: reconciles what should be served with what is, and never dies.

Desired state is a list of model references per model name (``models:/fraud@production``, a pinned
``models:/fraud/3``, a package folder). Every ``poll_interval`` the controller resolves them
against the registry (in a worker thread: the event loop, and so the data plane, never waits on
the database), and when a reference now points at another version it performs a hot swap:

1. load the new version's replicas and warm them (the old version keeps serving meanwhile);
2. publish a new routing table in one assignment, so new requests go to the new version;
3. drain the old version (its queued and running requests finish) and stop its replicas.

A version that fails to load is remembered (by manifest digest) and not retried until the
reference moves again or the repository API asks for it; the versions already serving keep
serving, and ``/v2/repository/index`` says why. A version that loaded but whose replica pool later
gave up restarting (``PoolState.FAILED``) is replaced by a fresh one on later polls, with
exponential backoff up to a cap (``retry_base``, ``retry_cap``; the ``clock`` is injectable, so
tests decide when a retry is due); meanwhile it stays published and answers 503 with the reason.
The repository API (``load``/``unload``) edits the desired state and reconciles at once, retrying
failed versions of that model at once. The same loop refreshes the API keys for :mod:`auth`, and
watches the registry itself (:mod:`registry_watch`): an outage is logged once, not every poll.

Deployments (``deployments``: names, or ``'*'`` for all) are followed the same way through a
:class:`~seaway.serving.deployments.DeploymentFollower`: each reconcile reads their plans, loads
every version a plan needs, and publishes their routes beside the plain models only once all of
a plan's versions are running (the last route serves meanwhile). After each reconcile the
follower leaves this process's counts in the registry and takes the decisions it holds the lease
for (a rollout's next step, a moved alias); a decision that changed a deployment is followed at
once, not a poll later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from seaway.errors import (
    ConfigError,
    InvalidInputError,
    ModelLoadError,
    NotFoundError,
    RegistryUnavailableError,
    SeawayError,
)
from seaway.packaging.manifest import Manifest
from seaway.packaging.reader import open_package
from seaway.registry import Registry
from seaway.registry.db import safe_url
from seaway.registry.uri import is_model_uri, parse_model_uri, validate_name
from seaway.runtime.pool import PoolState
from seaway.serving import registry_watch
from seaway.serving.auth import Authenticator
from seaway.serving.dataplane import DataPlane
from seaway.serving.deployment_route import DeploymentRoute
from seaway.serving.deployments import DeploymentFollower, Plan, close_recorders
from seaway.serving.metrics import Metrics
from seaway.serving.model import ServedModel, ServingOptions
from seaway.serving.rollout_drift import log_drift

log = logging.getLogger("seaway.serving.controller")

Key = tuple[str, str]  # (model name, version)
OptionsFor = Callable[[Manifest], ServingOptions]
#: builds a (not yet started) served model; tests pass one whose pools they control
ModelFactory = Callable[..., ServedModel]


@dataclass(frozen=True)
class Resolved:
    """A reference resolved to one package: what to load."""

    name: str
    version: str
    package_path: str
    manifest: Manifest
    manifest_sha256: str | None
    #: False for references that pin a version; such a version never answers unversioned calls
    #: while a moving reference (alias, latest, folder) of the same model is served.
    floating: bool


@dataclass
class Revival:
    """A published version whose pool failed: the attempts so far and when the next is due."""

    attempts: int
    due: float
    reason: str


@dataclass(frozen=True)
class IndexEntry:
    name: str
    version: str
    state: str
    reason: str = ""


class Controller:
    def __init__(
        self,
        plane: DataPlane,
        options_for: OptionsFor,
        *,
        registry: Registry | None = None,
        metrics: Metrics | None = None,
        authenticator: Authenticator | None = None,
        poll_interval: float = 2.0,
        retry_base: float = 1.0,
        retry_cap: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        model_factory: ModelFactory = ServedModel,
        deployments: Sequence[str] = (),
        wall_clock: Callable[[], float] = time.time,
        log_root: str | None = None,
        lease_seconds: float | None = None,
    ) -> None:
        self.plane = plane
        self.registry = registry
        self.metrics = metrics
        self.authenticator = authenticator
        self.poll_interval = poll_interval
        self.retry_base = retry_base
        self.retry_cap = retry_cap
        self._clock = clock
        self._model_factory = model_factory
        self._options_for = options_for
        #: what each running version was loaded from (a failed pool is replaced from it)
        self._items: dict[Key, Resolved] = {}
        #: running versions whose pool failed, waiting to be replaced
        self._revivals: dict[Key, Revival] = {}
        self._watch = registry_watch.RegistryWatch(registry.url) if registry is not None else None
        self._wanted: dict[str, list[str]] = {}
        self._running: dict[Key, ServedModel] = {}
        self._loading: set[Key] = set()
        #: versions that failed to load: key -> (manifest digest, reason)
        self._failed: dict[Key, tuple[str | None, str]] = {}
        #: the last resolution problem per reference, logged once
        self._problems: dict[str, str] = {}
        self._folders: dict[str, Resolved] = {}
        self._lock = asyncio.Lock()
        self._retiring: set[asyncio.Task[None]] = set()
        self.follower: DeploymentFollower | None = None
        if deployments:
            if registry is None:
                raise ConfigError("serving deployments needs a registry, where they are kept")
            self.follower = DeploymentFollower(
                registry,
                deployments,
                poll_interval=poll_interval,
                lease_seconds=lease_seconds,
                clock=wall_clock,
                drift=log_drift(registry, log_root) if log_root is not None else None,
            )

    # ---- desired state ---------------------------------------------------------------------------

    async def start(self, references: list[str]) -> None:
        """Resolve and load ``references``; any failure raises (the server refuses to start)."""
        resolved = [await self._resolve(ref) for ref in references]
        for ref, item in zip(references, resolved, strict=True):
            self._wanted.setdefault(item.name, []).append(ref)
        if self.follower is not None:
            await asyncio.to_thread(self.follower.read)
            self.follower.check_named()
            log.info(
                "following deployment(s) %s as %s (its decisions are recorded as %s)",
                ", ".join(self.follower.names),
                self.follower.server,
                self.follower.actor,
            )
            clash = sorted(set(self.follower.plans) & set(self._wanted))
            if clash:
                raise ConfigError(
                    f"{', '.join(clash)} is both a served model and a deployment; serve the "
                    "deployment alone (it serves its model's versions)"
                )
        await self.refresh_keys()
        async with self._lock:
            await self._reconcile(strict=True)

    async def run(self) -> None:
        """Poll forever; every error is logged and the loop goes on."""
        if self.poll_interval <= 0:
            return
        while True:
            await asyncio.sleep(self.poll_interval)
            try:
                await self.poll()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reconcile failed; the served models are unchanged")

    async def poll(self) -> None:
        """One turn of the loop: look at the registry (if it is there, follow it) and replace
        failed pools that are due. Tests call this directly instead of waiting for polls."""
        registry, watch = self.registry, self._watch
        if registry is not None and watch is not None:
            problem = await asyncio.to_thread(registry_watch.probe, registry)
            if problem:
                watch.down(problem)
            else:
                watch.up()
                await self.refresh_keys()
                async with self._lock:
                    await self._reconcile()
                await self._follow_deployments()
        async with self._lock:
            await self._revive()

    async def _follow_deployments(self) -> None:
        """Leave this process's counts, take the decisions this server leads, and follow at
        once what they changed."""
        follower = self.follower
        if follower is None:
            return
        try:
            await asyncio.to_thread(follower.flush)
            failures = {key: reason for key, (_, reason) in self._failed.items()}
            changed = await asyncio.to_thread(follower.drive, failures)
        except SeawayError as exc:
            self._note("deployments", f"cannot follow deployments now: {exc}")
            return
        if changed:
            async with self._lock:
                await self._reconcile()

    def model_names(self) -> set[str]:
        """The names served as plain models (not deployments)."""
        return set(self._wanted)

    async def deployments_changed(self) -> None:
        """The admin API changed a deployment: follow it now, not at the next poll."""
        async with self._lock:
            await self._reconcile()

    async def load(self, name: str, parameters: Mapping[str, Any]) -> None:
        """Repository API: serve ``name`` (a ``version`` or ``alias`` parameter picks which)."""
        validate_name(name)
        unknown = sorted(set(parameters) - {"version", "alias"})
        if unknown:
            raise InvalidInputError(
                f"unknown load parameter(s) {unknown}; use 'version' or 'alias' (or none)"
            )
        if "version" in parameters and "alias" in parameters:
            raise InvalidInputError("give a 'version' or an 'alias' to load, not both")
        if "version" in parameters:
            ref = f"models:/{name}/{parameters['version']}"
        elif "alias" in parameters:
            ref = f"models:/{name}@{parameters['alias']}"
        elif name in self._wanted:
            ref = ""  # reload what is wanted now
        else:
            ref = f"models:/{name}/latest"
        if ref and self.registry is None:
            raise InvalidInputError(
                "this server has no registry to load from (it serves package folders)"
            )
        async with self._lock:
            if ref:
                await self._resolve(ref)  # a bad or unknown reference is the caller's error
                self._wanted[name] = [ref]
            for key in [key for key in self._failed if key[0] == name]:
                del self._failed[key]  # asked explicitly: try failed versions again
            for key, revival in self._revivals.items():
                if key[0] == name:
                    revival.due = self._clock()  # and failed pools, without waiting
            await self._reconcile()
            await self._revive()
            problem = self._problem_of(name)
        if problem:
            raise ModelLoadError(problem)

    async def unload(self, name: str) -> None:
        async with self._lock:
            if name not in self._wanted and not any(key[0] == name for key in self._running):
                raise NotFoundError(f"model {name!r} is not served here")
            self._wanted.pop(name, None)
            await self._reconcile()

    def index(self) -> list[IndexEntry]:
        entries = {
            key: IndexEntry(
                key[0],
                key[1],
                "READY" if model.ready else "UNAVAILABLE",
                self._reason_of(key, model),
            )
            for key, model in self._running.items()
        }
        for key in self._loading:
            entries[key] = IndexEntry(key[0], key[1], "LOADING")
        for key, (_, reason) in self._failed.items():
            entries.setdefault(key, IndexEntry(key[0], key[1], "UNAVAILABLE", reason))
        return sorted(entries.values(), key=lambda e: (e.name, _version_sort(e.version)))

    async def refresh_keys(self) -> None:
        if self.authenticator is None or self.registry is None:
            return
        try:
            keys = await asyncio.to_thread(self.registry.active_api_keys)
        except SeawayError as exc:
            self._note("api-keys", f"cannot refresh API keys, keeping the last ones: {exc}")
            return
        self._problems.pop("api-keys", None)
        self.authenticator.update(keys)

    async def stop(self) -> None:
        """Drain and stop every version, serving or retiring; then leave the deployments' last
        counts in the registry and hand back their leases (``DeploymentFollower.close``)."""
        running, self._running = list(self._running.values()), {}
        await asyncio.gather(*(m.stop(drain=True) for m in running), return_exceptions=True)
        for task in list(self._retiring):
            with contextlib.suppress(Exception):
                await task
        if self.follower is not None:
            try:
                await asyncio.to_thread(self.follower.close)
            except Exception as exc:  # stopping goes on whatever the registry says
                log.warning("could not leave the deployments' last counts in the registry: %s", exc)

    # ---- reconciliation --------------------------------------------------------------------------

    async def _reconcile(self, *, strict: bool = False) -> None:
        desired: dict[Key, Resolved] = {}
        defaults: dict[str, str] = {}
        unresolved: set[str] = set()
        for name, refs in self._wanted.items():
            for ref in refs:
                try:
                    item = await self._resolve(ref)
                except SeawayError as exc:
                    if strict:
                        raise
                    if isinstance(exc, RegistryUnavailableError) and self._watch is not None:
                        self._watch.down(registry_watch.describe(exc))
                    else:
                        self._note(ref, f"cannot resolve {ref}: {exc}")
                    unresolved.add(name)
                    continue
                self._problems.pop(ref, None)
                desired[(item.name, item.version)] = item
                if item.floating:
                    defaults.setdefault(name, item.version)

        plans = await self._deployment_plans(strict)
        for item_plan in plans.values():
            for version in item_plan.versions:
                ref = f"models:/{item_plan.model}/{version}"
                try:
                    item = await self._resolve(ref)
                except SeawayError as exc:
                    if strict:
                        raise
                    self._note(ref, f"deployment {item_plan.name}: cannot resolve {ref}: {exc}")
                    continue
                self._problems.pop(ref, None)
                desired.setdefault((item.name, item.version), item)

        to_start = [
            item
            for key, item in desired.items()
            if key not in self._running
            and not (key in self._failed and self._failed[key][0] == item.manifest_sha256)
        ]
        if to_start:
            await asyncio.gather(*(self._start(item) for item in to_start))
        if strict and self._failed:
            key, (_, reason) = next(iter(self._failed.items()))
            raise ModelLoadError(f"model {key[0]} version {key[1]} failed to load: {reason}")

        serve: dict[Key, ServedModel] = {}
        for name in self._wanted:
            wanted = {key for key in desired if key[0] == name}
            ready = {key for key in wanted if key in self._running}
            serve.update({key: self._running[key] for key in ready})
            if ready != wanted or name in unresolved:
                # something new failed: whatever served this model before keeps serving
                serve.update({k: m for k, m in self._running.items() if k[0] == name})
        defaults = {name: version for name, version in defaults.items() if (name, version) in serve}
        plain = list(serve.values())
        routes = self._deployment_routes(plans)
        for route in routes.values():
            serve.update({(m.name, m.version): m for m in route.models})
        self.plane.publish(plain, defaults, list(routes.values()))
        if self.follower is not None:
            gone = self.follower.published(routes)
            if gone:
                asyncio.get_running_loop().create_task(close_recorders(gone))
        for key in [key for key in self._running if key not in serve]:
            self._items.pop(key, None)
            self._retire(self._running.pop(key))
        resolved_names = set(self._wanted) - unresolved
        self._failed = {
            key: value
            for key, value in self._failed.items()
            if key in desired or key[0] not in resolved_names
        }

    async def _deployment_plans(self, strict: bool) -> dict[str, Plan]:
        """The followed deployments' plans: read now, or the last ones while the registry is
        away (``strict``, at start: any failure raises)."""
        follower = self.follower
        if follower is None:
            return {}
        try:
            plans = await asyncio.to_thread(follower.read)
        except SeawayError as exc:
            if strict:
                raise
            self._note("deployments", f"cannot read the deployments, keeping the last: {exc}")
            return dict(follower.plans)
        self._problems.pop("deployments", None)
        clash = {name for name in plans if name in self._wanted}
        for name in sorted(clash):
            self._note(
                f"deployment:{name}",
                f"deployment {name} has the name of a served model; it is not served here",
            )
        return {name: p for name, p in plans.items() if name not in clash}

    def _deployment_routes(self, plans: Mapping[str, Plan]) -> dict[str, DeploymentRoute]:
        """Routes of the plans whose versions all run; a plan still loading (or failing) keeps
        its last route, so a new revision never sends a request to a version that is not warm."""
        follower = self.follower
        if follower is None:
            return {}
        routes: dict[str, DeploymentRoute] = {}
        for name, item in plans.items():
            missing = [v for v in item.versions if (item.model, v) not in self._running]
            if not missing:
                try:
                    routes[name] = follower.build(item, self._running)
                except SeawayError as exc:
                    self._note(f"deployment:{name}", f"deployment {name}: {exc}")
                else:
                    self._problems.pop(f"deployment:{name}", None)
                    continue
            else:
                self._note(
                    f"deployment:{name}",
                    f"deployment {name} revision {item.revision}: version(s) "
                    f"{', '.join(missing)} of {item.model} not loaded; the last revision serves",
                )
            last = follower.routes.get(name)
            if last is not None and all((m.name, m.version) in self._running for m in last.models):
                routes[name] = last
        return routes

    async def _start(self, item: Resolved) -> None:
        model = await self._load(item)
        if model is not None:
            self._running[(item.name, item.version)] = model

    async def _load(self, item: Resolved) -> ServedModel | None:
        """A started model of ``item``, or None (the reason recorded in ``_failed``)."""
        key = (item.name, item.version)
        hooks = self.metrics
        model = self._model_factory(
            item.name,
            item.version,
            item.package_path,
            item.manifest,
            self._options_for(item.manifest),
            manifest_sha256=item.manifest_sha256,
            on_batch=hooks.batch_hook(*key) if hooks else None,
            on_restart=hooks.restart_hook(*key) if hooks else None,
        )
        self._loading.add(key)
        started = time.monotonic()
        log.info("loading model %s version %s", *key)
        try:
            await model.start()
        except Exception as exc:
            reason = str(exc) if isinstance(exc, SeawayError) else f"{type(exc).__name__}: {exc}"
            self._failed[key] = (item.manifest_sha256, reason)
            if hooks:
                hooks.model_failed(*key)
            log.error("model %s version %s failed to load: %s", *key, reason)
            return None
        finally:
            self._loading.discard(key)
        seconds = time.monotonic() - started
        self._failed.pop(key, None)
        self._items[key] = item
        if hooks:
            hooks.model_loaded(*key, seconds)
        log.info("model %s version %s is ready (%.2f s)", *key, seconds)
        return model

    async def _revive(self) -> None:
        """Replace published versions whose pool gave up restarting, when their retry is due.

        The failed version stays published meanwhile (its requests get a 503 that says why);
        a fresh one that starts takes its place in one publish, and the failed one is stopped.
        """
        now = self._clock()
        for key in [key for key in self._revivals if key not in self._running]:
            del self._revivals[key]  # unloaded or swapped away meanwhile
        for key, model in list(self._running.items()):
            if model.pool.state is not PoolState.FAILED:
                self._revivals.pop(key, None)
                continue
            revival = self._revivals.get(key)
            if revival is None:
                reason = model.pool.error or "its replicas could not be restarted"
                log.error("model %s version %s failed (%s); replacing its replicas", *key, reason)
                revival = self._revivals[key] = Revival(0, now, reason)
            item = self._items.get(key)
            if now < revival.due or item is None:
                continue
            revival.attempts += 1
            self._failed.pop(key, None)
            fresh = await self._load(item)
            if fresh is None:
                delay = min(self.retry_base * 2 ** (revival.attempts - 1), self.retry_cap)
                revival.due = self._clock() + delay
                revival.reason = self._failed.pop(key, (None, revival.reason))[1]
                log.warning(
                    "model %s version %s: replacement %d failed; next try in %g s",
                    *key,
                    revival.attempts,
                    delay,
                )
                continue
            del self._revivals[key]
            if self._running.get(key) is model:
                self._running[key] = fresh
                self.plane.replace(model, fresh)
                self._retire(model)
            else:  # unloaded or swapped meanwhile: the fresh one is not wanted
                self._retire(fresh)

    def _retire(self, model: ServedModel) -> None:
        """Drain a version that no longer serves, in the background."""
        log.info("draining model %s version %s", model.name, model.version)

        async def drain() -> None:
            await model.stop(drain=True)
            log.info("stopped model %s version %s", model.name, model.version)

        task = asyncio.get_running_loop().create_task(drain())
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def _resolve(self, ref: str) -> Resolved:
        if is_model_uri(ref):
            registry = self.registry
            if registry is None:
                raise InvalidInputError(f"{ref} needs a registry")
            parsed = parse_model_uri(ref)

            def fetch() -> Resolved:
                try:
                    record = registry.resolve(parsed)
                    path = registry.fetch(record)
                except SeawayError:
                    raise
                except Exception as exc:  # a driver error the registry did not translate
                    raise RegistryUnavailableError(
                        f"cannot use the registry at {safe_url(registry.url)}: "
                        f"{registry_watch.describe(exc)}"
                    ) from exc
                return Resolved(
                    record.name,
                    str(record.version),
                    str(path),
                    record.manifest,
                    record.manifest_sha256,
                    floating=parsed.version is None,
                )

            return await asyncio.to_thread(fetch)
        known = self._folders.get(ref)
        if known is not None:  # a folder does not move: verify it once, not on every poll
            return known
        package = await asyncio.to_thread(open_package, ref)
        name = validate_name(package.path.resolve().name)
        resolved = Resolved(name, "1", str(package.path), package.manifest, None, floating=True)
        self._folders[ref] = resolved
        return resolved

    def _reason_of(self, key: Key, model: ServedModel) -> str:
        reason = model.unready_reason
        revival = self._revivals.get(key)
        if revival is not None and reason:
            wait = max(0.0, revival.due - self._clock())
            reason += f" (replaced {revival.attempts} time(s) so far; next try in {wait:.0f} s)"
        return reason

    def _problem_of(self, name: str) -> str:
        for key, model in self._running.items():
            if key[0] == name and key in self._revivals:
                return f"model {name} version {key[1]}: {self._reason_of(key, model)}"
        for key, (_, reason) in self._failed.items():
            if key[0] == name:
                return f"model {name} version {key[1]} failed to load: {reason}"
        for ref in self._wanted.get(name, []):
            if ref in self._problems:
                return self._problems[ref]
        return ""

    def _note(self, topic: str, message: str) -> None:
        """Log a problem once, not on every poll."""
        if self._problems.get(topic) != message:
            self._problems[topic] = message
            log.warning(message)


def _version_sort(version: str) -> tuple[int, str]:
    return (int(version), "") if version.isdigit() else (-1, version)
