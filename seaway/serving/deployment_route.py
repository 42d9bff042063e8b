"""A deployment as the data plane serves it: versions splitting a name's traffic, and its counts.

A deployment is a named endpoint (``/v2/models/fraud-prod/infer``) whose requests are split among
versions of one model (the *arms*) by a :class:`~seaway.routing.policy.Picker`: at random by
weight, or sticky per key (a header, or an input field's value in the first row) for an A/B test.
A *shadow* version gets a copy of some answered requests; it never answers, never delays the
answer, and its failures never reach a client.

The controller builds a :class:`DeploymentRoute` from plain values (it needs no spec) and
publishes it with the data plane's routing table; a new revision is a new route. The
:class:`Recorder` holds this process's counts for one revision (per-arm latency, errors and
outputs; shadow agreement; outcomes and accuracy from labels), which the controller flushes to
the registry, and it is kept across routes of the same revision (a rollout step changes the
split, not the revision).
"""

from __future__ import annotations

import asyncio
import math
import random
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from seaway.errors import ConfigError, InvalidInputError, NotFoundError, listed, quoted
from seaway.protocol.types import ModelMetadata, Tensor
from seaway.routing.policy import Picker, Split
from seaway.routing.stats import ArmStats, DeploymentStats, ShadowStats
from seaway.serving.answers import Answers
from seaway.serving.model import ServedModel
from seaway.serving.request_context import header

#: answered requests remembered (id -> version, first output), for outcomes and labels
REMEMBERED = 50_000


class Recorder:
    """This process's counts for one revision of one deployment; the shadow's pending copies.

    Bounded: at most ``remember`` answers are kept for outcomes and labels (the oldest go first)
    and at most ``max_pending`` shadow copies run at once; a copy beyond it is dropped and
    counted (``stats.shadow.dropped``), never queued."""

    def __init__(
        self,
        versions: Iterable[str] = (),
        *,
        shadow: bool = False,
        max_pending: int = 64,
        remember: int = REMEMBERED,
    ) -> None:
        if max_pending < 1:
            raise ConfigError(f"shadow max_pending must be at least 1, got {max_pending}")
        self.stats = DeploymentStats(
            arms={v: ArmStats() for v in versions}, shadow=ShadowStats() if shadow else None
        )
        self.max_pending = max_pending
        self.remember_at_most = remember
        self._answers = Answers(remember)
        #: request ids whose outcome was counted (a retry must not count again)
        self._outcomes: OrderedDict[str, None] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()

    def arm(self, version: str) -> ArmStats:
        arms = self.stats.arms
        stats = arms.get(version)
        if stats is None:
            stats = arms[version] = ArmStats()
        return stats

    @property
    def shadow(self) -> ShadowStats:
        if self.stats.shadow is None:
            self.stats.shadow = ShadowStats()
        return self.stats.shadow

    # ---- answers --------------------------------------------------------------------------------

    def remember(self, rid: str, version: str, first: np.ndarray[Any, Any] | None) -> None:
        """Keep which version answered ``rid`` (and its first rows), for outcomes and labels."""
        self._answers.put(rid, version, first)

    def answered(self, rid: str) -> tuple[str, list[Any]] | None:
        """The version that answered ``rid`` and its first output's first rows, if remembered."""
        return self._answers.get(rid)

    def first_outcome(self, rid: str) -> bool:
        """True the first time an outcome of ``rid`` comes (bounded like the answers kept)."""
        if rid in self._outcomes:
            return False
        self._outcomes[rid] = None
        if len(self._outcomes) > self.remember_at_most:
            self._outcomes.popitem(last=False)
        return True

    def observe_outcome(self, version: str, value: float) -> None:
        self.arm(version).observe_outcome(value)

    def observe_label(self, rid: str, row: int, label: Any) -> bool:
        """A true label of row ``row`` of request ``rid``: the answering arm's accuracy (or
        error, for numbers) counts it. False when the request is not remembered."""
        found = self.answered(rid)
        if found is None:
            return False
        version, rows = found
        if not 0 <= row < len(rows):
            return False
        try:
            self.arm(version).observe_label(rows[row], label)
        except InvalidInputError:  # a label the arm's answers cannot be scored by (text for
            return False  # a number): stored all the same, and not counted
        return True

    # ---- shadow copies --------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        return len(self._tasks)

    def launch(self, copy: Any) -> bool:
        """Run the coroutine ``copy`` as a shadow copy, unless ``max_pending`` copies run already:
        then it is closed unstarted and counted as dropped. True when it runs."""
        stats = self.shadow
        if len(self._tasks) >= self.max_pending:
            stats.dropped += 1
            copy.close()
            return False
        stats.copies += 1
        task = asyncio.get_running_loop().create_task(copy)
        self._tasks.add(task)  # the loop keeps only a weak reference to a task
        task.add_done_callback(self._tasks.discard)
        return True

    async def close(self) -> None:
        """Cancel the shadow copies still running (the revision is retired)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class DeploymentRoute:
    """What the data plane needs to serve deployment ``name``: arms by version, how to pick one,
    the shadow, and the recorder. Immutable once published; build a new one to change it."""

    def __init__(
        self,
        name: str,
        *,
        model: str,
        split: Split,
        arms: Mapping[str, ServedModel],
        revision: int = 0,
        sticky_header: str | None = None,
        sticky_input: str | None = None,
        shadow: ServedModel | None = None,
        shadow_fraction: float = 1.0,
        shadow_max_pending: int = 64,
        recorder: Recorder | None = None,
        rng: random.Random | None = None,
    ) -> None:
        versions = [version for version, _ in split.arms]
        missing = [v for v in versions if v not in arms]
        if missing:
            raise ConfigError(
                f"deployment {quoted(name)}: no served model for version(s) {listed(missing)} of "
                f"its split (given: {listed(sorted(arms))})"
            )
        if sticky_header is not None and sticky_input is not None:
            raise ConfigError(
                f"deployment {quoted(name)}: a sticky key is a header or an input, not both"
            )
        if not 0.0 < shadow_fraction <= 1.0:
            raise ConfigError(
                f"deployment {quoted(name)}: shadow fraction must be in (0, 1], got "
                f"{shadow_fraction}"
            )
        self.name = name
        self.model = model
        self.revision = revision
        self.split = split
        self.arms: dict[str, ServedModel] = {v: arms[v] for v in versions}
        self.sticky_header = sticky_header
        self.sticky_input = sticky_input
        self.shadow = shadow
        self.shadow_fraction = shadow_fraction
        self.rng = rng if rng is not None else random.Random()
        self.picker = Picker(split, salt=name, rng=self.rng)
        self.recorder = recorder or Recorder(
            versions, shadow=shadow is not None, max_pending=shadow_max_pending
        )
        weights = dict(split.arms)
        #: the arm that speaks for the deployment where one must (metadata, signature): the one
        #: with the most traffic, the first of those on a tie
        self.primary = self.arms[max(versions, key=lambda v: weights[v])]
        #: each arm's first default output: the one observed per answer and compared with the
        #: shadow's (a classifier's ``predict``)
        self.observed = {v: m.requested_outputs(())[0] for v, m in self.arms.items()}
        #: arms whose inputs the shadow takes as they are (the same signature): no second
        #: conversion of each copy
        self.same_inputs = frozenset(
            v
            for v, m in self.arms.items()
            if shadow is not None and shadow.signature == m.signature
        )
        #: the shadow's first default output, compared with the primary's
        self.shadow_output = shadow.requested_outputs(())[0] if shadow is not None else ""
        self._input_column = _column_index(self.primary, sticky_input)

    def replacing(self, old: ServedModel, new: ServedModel) -> DeploymentRoute | None:
        """This route with ``new`` where ``old`` is (a failed pool's replacement), keeping its
        recorder and random source; None when ``old`` is not one of its versions."""
        arms = {v: new if m is old else m for v, m in self.arms.items()}
        shadow = new if self.shadow is old else self.shadow
        if shadow is self.shadow and all(arms[v] is m for v, m in self.arms.items()):
            return None
        return DeploymentRoute(
            self.name,
            model=self.model,
            split=self.split,
            arms=arms,
            revision=self.revision,
            sticky_header=self.sticky_header,
            sticky_input=self.sticky_input,
            shadow=shadow,
            shadow_fraction=self.shadow_fraction,
            recorder=self.recorder,
            rng=self.rng,
        )

    @property
    def models(self) -> list[ServedModel]:
        """Every version this route holds: its arms, then its shadow."""
        found = list(self.arms.values())
        if self.shadow is not None:
            found.append(self.shadow)
        return found

    def arm(self, version: str | None) -> ServedModel:
        """The arm ``version`` names (a request that names one), else the primary."""
        if version is None:
            return self.primary
        model = self.arms.get(version)
        if model is None:
            raise NotFoundError(
                f"deployment {quoted(self.name)} has no version {quoted(version)} (it routes to "
                f"versions {listed(self.arms)})"
            )
        return model

    @property
    def unready_reason(self) -> str:
        """Why the deployment cannot answer now ("" when it can): an arm with traffic that
        cannot (the shadow does not count: it never answers)."""
        weights = dict(self.split.arms)
        reasons = [
            reason
            for version, model in self.arms.items()
            if weights[version] > 0 and (reason := model.unready_reason)
        ]
        return "; ".join(f"deployment {quoted(self.name)}: {reason}" for reason in reasons)

    def metadata(self, version: str | None = None) -> ModelMetadata:
        """The deployment's metadata under its own name: every arm's version, and the inputs
        and outputs of the arm ``version`` names (else the primary's)."""
        meta = self.arm(version).metadata()
        versions = tuple(self.arms) if version is None else meta.versions
        return ModelMetadata(self.name, versions, meta.platform, meta.inputs, meta.outputs)

    def pick_for_tensors(self, tensors: Sequence[Tensor]) -> ServedModel:
        """The arm for a V2 request: by its sticky key when it has one, else at random."""
        return self.arms[self.picker.pick(self._key_of_tensors(tensors))]

    def pick_for_data(self, data: Any) -> ServedModel:
        """The arm for a request that is not tensors (MLflow scoring)."""
        return self.arms[self.picker.pick(self._key_of_data(data))]

    def version_for_key(self, key: str) -> str:
        """The version a sticky key is routed to (an outcome posted by key)."""
        return self.picker.pick(key)

    @property
    def sticky(self) -> bool:
        return self.sticky_header is not None or self.sticky_input is not None

    def record_outcome(self, rid: str | None, key: str | None, value: float) -> str:
        """An outcome (a conversion, a measure) of the request ``rid`` or of the sticky ``key``,
        counted for the arm that answered it: ``"accepted"``; ``"unmatched"`` when that arm is
        not known (an id this process does not remember: another server's, or too old);
        ``"duplicate"`` for a request id whose outcome was counted already (a client's retry
        must not count twice in the test)."""
        if rid is not None:
            found = self.recorder.answered(rid)
            if found is None:
                return "unmatched"
            if not self.recorder.first_outcome(rid):
                return "duplicate"
            version = found[0]
        elif key is not None:
            version = self.version_for_key(key)
        else:
            return "unmatched"
        self.recorder.observe_outcome(version, value)
        return "accepted"

    def _key_of_tensors(self, tensors: Sequence[Tensor]) -> str | None:
        if self.sticky_header is not None:
            return header(self.sticky_header)
        field = self.sticky_input
        if field is None:
            return None
        for tensor in tensors:
            if tensor.name == field:
                return _first_value(tensor.data)
        column = self._input_column
        if column is not None and len(tensors) == 1:  # one [rows, columns] tensor
            data = tensors[0].data
            if data.ndim == 2 and data.shape[0] and column < data.shape[1]:
                return _key_text(data[0, column])
        return None

    def _key_of_data(self, data: Any) -> str | None:
        if self.sticky_header is not None:
            return header(self.sticky_header)
        field = self.sticky_input
        if field is None:
            return None
        if isinstance(data, Mapping):
            if field in data:
                return _first_value(np.asarray(data[field]))
            return None
        columns = getattr(data, "columns", None)  # a DataFrame
        if columns is not None and field in columns:
            return _first_value(data[field].to_numpy())
        if isinstance(data, list) and data and isinstance(data[0], Mapping) and field in data[0]:
            return _key_text(data[0][field])
        return None


def _column_index(model: ServedModel, field: str | None) -> int | None:
    """Where input ``field`` is among the columns of a one-tensor ``[rows, columns]`` request."""
    signature = model.signature
    if field is None or signature is None or field not in signature.input_names:
        return None
    return signature.input_names.index(field)


def _first_value(array: np.ndarray[Any, Any]) -> str | None:
    if array.size == 0:
        return None
    return _key_text(array.reshape(-1)[0])


def _key_text(value: Any) -> str | None:
    """A key's text, alike for the same value however it came (``7``, ``7.0``, ``b"7"``)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if value.is_integer():
            return str(int(value))
    if value is None:
        return None
    return str(value)
