"""How ``seaway deploy`` shows a deployment: tables and wrapped lines that fit 80 columns.

In a pipe a table takes its natural width (``output.table``), so any long text (a revision's
message, a decision's reason) would make it as wide as that text: such text is wrapped here, in its
cell or as indented lines under a table, to keep every line within 80 columns.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from seaway.cli.output import console, fields, say, table
from seaway.deploy.results import DeploymentResults
from seaway.deploy.status import DeploymentStatus
from seaway.registry.deployments import DecisionRecord, Revision
from seaway.routing.policy import Split

WIDTH = 80
#: a compact table's gap between columns
_GAP = 2


def when(value: datetime | None) -> str:
    return "-" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def traffic(split: Split | Sequence[tuple[str, float]]) -> str:
    """``1:90 2:10``: each version and its percent of the traffic."""
    arms = split.arms if isinstance(split, Split) else split
    return " ".join(f"{version}:{weight:g}" for version, weight in arms)


def routes(spec: dict[str, Any]) -> str:
    """A stored spec's routes, then its rollout candidate and shadow: ``1:100 rollout:2``."""
    text = traffic([(str(r["version"]), float(r["weight"])) for r in spec.get("routes", [])])
    for section in ("rollout", "shadow"):
        if isinstance(spec.get(section), dict):
            text += f" {section}:{spec[section].get('version')}"
    return text


def lines(text: str, indent: int = 0, *, hang: int = 0) -> None:
    """``text`` wrapped to the width (80, or a narrower terminal's), indented; lines after the
    first ``hang`` columns more."""
    width = min(WIDTH, console.width) if console.is_terminal else WIDTH
    pad = " " * indent
    wrapped = textwrap.fill(
        text,
        width=max(width, indent + hang + 20),
        initial_indent=pad,
        subsequent_indent=pad + " " * hang,
        break_long_words=False,
        break_on_hyphens=False,
    )
    say(wrapped)


def fitted_table(title: str | None, columns: list[str], rows: list[list[str]]) -> None:
    """A compact table whose last column is wrapped so that each line fits the width."""
    others = [
        max([len(columns[i]), *(len(line) for row in rows for line in row[i].split("\n"))])
        for i in range(len(columns) - 1)
    ]
    budget = max(20, WIDTH - sum(others) - _GAP * (len(columns) - 1))
    wrapped = [
        [*row[:-1], "\n".join(textwrap.wrap(row[-1], budget, break_long_words=False)) or "-"]
        for row in rows
    ]
    table(title, columns, wrapped, compact=True)


def show_list(statuses: list[DeploymentStatus]) -> None:
    rows = [
        [
            s.deployment.name,
            s.deployment.model,
            str(s.deployment.revision),
            str(s.spec.strategy),
            traffic(s.split),
        ]
        for s in statuses
    ]
    fitted_table(None, ["name", "model", "rev", "strategy", "traffic"], rows)


def show_status(s: DeploymentStatus) -> None:
    d, spec = s.deployment, s.spec
    items: list[tuple[str, Any]] = [
        ("model", d.model),
        ("revision", f"{d.revision} by {d.actor}, {when(d.updated_at)} UTC"),
        ("strategy", str(spec.strategy)),
        ("traffic", traffic(s.split)),
    ]
    if spec.ab is not None:
        key = spec.ab.key.header or f"input {spec.ab.key.input}"
        items.append(("sticky key", key))
    if spec.shadow is not None:
        items.append(
            ("shadow", f"version {spec.shadow.version}, {spec.shadow.fraction:g} of requests")
        )
    if spec.alias is not None:
        items.append(("follows", f"alias {spec.alias} ({spec.on_alias_change} on change)"))
    if spec.validation is not None:
        items.append(("validation", spec.validation.data))
    if s.rollout is not None and spec.rollout is not None:
        state = s.rollout
        steps = len(spec.rollout.steps)
        at = f", {s.step_weight:g}%" if s.step_weight is not None else ""
        items.append(("rollout", f"{state.phase}: step {state.step + 1} of {steps}{at}"))
        items.append(("versions", f"{state.candidate} replacing {state.stable}"))
    fields(f"Deployment {d.name}", items)
    if s.last_decision is not None:
        say("")
        show_decisions([s.last_decision], title="Last decision")


def show_history(revisions: list[Revision]) -> None:
    rows = [
        [str(r.revision), when(r.created_at), _actor(r.actor), routes(r.spec), r.message]
        for r in revisions
    ]
    fitted_table(None, ["rev", "when (UTC)", "actor", "traffic", "message"], rows)


def _actor(actor: str) -> str:
    """A server's actor on two lines (``controller:`` / its id): the table stays narrow."""
    kind, _, who = actor.partition(":")
    return f"{kind}:\n{who}" if kind == "controller" and who else actor


def show_decisions(records: list[DecisionRecord], *, title: str | None = None) -> None:
    if title:
        say(title)
    for record in records:
        d = record.decision
        weight = d.get("weight")
        where = f"step {int(d.get('step', 0)) + 1}" + (
            f", {float(weight):g}%" if weight is not None else ""
        )
        lines(
            f"#{record.seq}  {when(record.at)}  {d.get('action', '?')}  by {record.actor}  "
            f"(revision {record.revision}, {where})",
            hang=4,
        )
        reason = str(d.get("reason", ""))
        lines(reason, indent=4)
        for gate in d.get("gates", []):
            lines(_gate(gate, reason), indent=6)


def _gate(gate: dict[str, Any], reason: str = "") -> str:
    """A gate's verdict, value and limit; its message too, unless the reason already says it."""
    value, limit = gate.get("value"), gate.get("threshold")
    shown = "-" if value is None else f"{value:.4g}"
    bound = "" if limit is None else f" (limit {limit:g})"
    message = str(gate.get("message", ""))
    said = f"; {message}" if message and message not in reason else ""
    return f"{gate.get('name')}: {gate.get('verdict')}, {shown}{bound}{said}"


def show_results(r: DeploymentResults) -> None:
    labelled = any(arm.labelled for arm in r.arms)
    columns = ["version", "weight", "requests", "errors", "p50 ms", "p99 ms", "outcomes", "mean"]
    if labelled:
        columns.append("accuracy")
    rows = []
    for arm in r.arms:
        row = [
            arm.version,
            f"{arm.weight:g}%",
            str(arm.requests),
            _percent(arm.error_rate),
            _number(arm.p50_ms),
            _number(arm.p99_ms),
            str(arm.outcomes),
            _number(arm.outcome_mean),
        ]
        rows.append([*row, _percent(arm.accuracy)] if labelled else row)
    updated = f", last {when(r.updated_at)} UTC" if r.updated_at else ""
    title = f"{r.name} revision {r.revision} ({r.strategy}), {r.servers} server(s){updated}"
    table(title, columns, rows, compact=True)
    for result in r.ab:
        say("")
        lines(f"A/B {result.treatment.version} vs {result.control.version}: {result.message}")
        if result.enough_data and result.difference is not None:
            low, high = result.ci_low, result.ci_high
            p = "-" if result.p_value is None else f"{result.p_value:.3g}"
            lines(
                f"difference {result.difference:+.4g} (always-valid CI {_number(low)} to "
                f"{_number(high)}), p = {p}",
                indent=4,
            )
    if r.shadow is not None:
        s = r.shadow
        say("")
        lines(
            f"shadow version {s.version}: {s.copies} copies, {s.dropped} dropped, {s.errors} "
            f"errors, agreement {_percent(s.agreement)}, mean abs diff {_number(s.mean_abs_diff)}, "
            f"p99 {_number(s.p99_ms)} ms"
        )
    if r.rollout is not None:
        say("")
        at = f" at {r.step_weight:g}%" if r.step_weight is not None else ""
        lines(f"rollout {r.rollout.phase}{at}: {r.rollout.reason}")
    if not r.servers:
        say("")
        lines("No counters yet: no server has flushed traffic for this revision.")


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"
