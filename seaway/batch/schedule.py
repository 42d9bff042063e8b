"""When a schedule runs, and what each run reads and writes: cron, timezone, path templates.

Pure logic, no database: the scheduler (``seaway.batch.scheduler``) asks :func:`due` which
occurrence to run now, and :func:`options_for` what that run scores.

- **Cron** has the five standard fields (minute, hour, day of month, month, day of week) or a
  keyword (``@hourly``, ``@daily``, ``@weekly``, ``@monthly``, ``@yearly``), read in the
  schedule's timezone (an IANA name, ``UTC`` by default).
- **Templates**: a schedule's input and output may hold placeholders, filled with the occurrence's
  wall-clock time in the schedule's timezone: ``{date}`` 2026-11-25, ``{datetime}``
  20261125T0200, ``{yyyy}`` 2026, ``{mm}`` 11, ``{dd}`` 25, ``{hh}`` 02.
- **Every occurrence writes its own folder.** A finished output folder is never scored again (a
  rerun into it returns the finished job), so an output that two occurrences would share makes the
  second a silent no-op. :func:`new_schedule` therefore refuses an output template coarser than
  the cron: a daily schedule needs the date in its output, an hourly one the hour too.
- **Missed occurrences collapse**: :func:`due` offers only the latest occurrence that is due, so a
  scheduler that was down for a week runs a daily schedule once, for the latest day, not seven
  times. Occurrences at or before the schedule's creation never run.
- **Daylight saving time**: a wall-clock time that happens twice (autumn) runs once; one that does
  not happen (spring) runs at the next valid time.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from seaway.batch.job import BatchOptions
from seaway.errors import InvalidInputError, MissingDependencyError
from seaway.registry.jobs import Schedule
from seaway.registry.uri import is_model_uri, parse_model_uri

#: Placeholders of input and output templates: what each becomes for an occurrence (local time).
PLACEHOLDERS: dict[str, Callable[[datetime], str]] = {
    "date": lambda t: t.strftime("%Y-%m-%d"),
    "datetime": lambda t: t.strftime("%Y%m%dT%H%M"),
    "yyyy": lambda t: t.strftime("%Y"),
    "mm": lambda t: t.strftime("%m"),
    "dd": lambda t: t.strftime("%d"),
    "hh": lambda t: t.strftime("%H"),
}
_PLACEHOLDER = re.compile(r"\{([A-Za-z_]\w*)\}")

FIELDS = ("minute", "hour", "day-of-month", "month", "day-of-week")
_RANGES = ("0-59", "0-23", "1-31", "1-12 or jan-dec", "0-7 or sun-sat")
_KEYWORDS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
_CRON_HELP = (
    "cron takes five fields, minute hour day-of-month month day-of-week, e.g. '0 2 * * *' for "
    "02:00 every day, or @hourly, @daily, @weekly, @monthly, @yearly"
)

#: Time units from the finest; a cron's resolution is the finest unit in which it varies.
UNITS = ("minute", "hour", "day", "month", "year")
#: For each unit, the placeholder sets any one of which tells two occurrences apart at that unit
#: (given that the coarser units are told apart too).
_TELLS_APART: dict[str, tuple[frozenset[str], ...]] = {
    "year": (frozenset({"yyyy"}), frozenset({"date"}), frozenset({"datetime"})),
    "month": (frozenset({"mm"}), frozenset({"date"}), frozenset({"datetime"})),
    "day": (frozenset({"dd"}), frozenset({"date"}), frozenset({"datetime"})),
    "hour": (frozenset({"hh"}), frozenset({"datetime"})),
    "minute": (frozenset({"datetime"}),),
}
_HINTS = {
    "year": "{yyyy} or {date}",
    "month": "{yyyy}/{mm} or {date}",
    "day": "{date}",
    "hour": "{date}/{hh} or {datetime}",
    "minute": "{datetime}",
}


def timezone_of(name: str) -> ZoneInfo:
    """The IANA timezone ``name``; a clear error when there is none."""
    if name.upper() == "UTC":
        name = "UTC"
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInputError(
            f"unknown timezone {name!r}; use an IANA name such as UTC, Europe/Paris or "
            "America/New_York"
        ) from None


@dataclass(frozen=True)
class Cron:
    """A validated cron expression read in a timezone. Build one with :func:`parse_cron`."""

    expression: str
    timezone: str = "UTC"

    @property
    def zone(self) -> ZoneInfo:
        return timezone_of(self.timezone)

    def latest(self, now: datetime) -> datetime:
        """The latest occurrence at or before ``now``, in UTC."""
        croniter = _croniter()
        local = _aware(now).astimezone(self.zone).replace(microsecond=0) + timedelta(seconds=1)
        iterator = croniter(self.expression, local)
        found: datetime = iterator.get_prev(datetime)
        if self._repeats(found):  # a wall-clock time that happens twice runs once: the first
            found = iterator.get_prev(datetime)
        return found.astimezone(UTC)

    def next(self, now: datetime) -> datetime:
        """The first occurrence after ``now`` that will run, in UTC."""
        iterator = _croniter()(self.expression, _aware(now).astimezone(self.zone))
        found: datetime = iterator.get_next(datetime)
        if self._repeats(found):  # the second of a wall-clock time that happens twice
            found = iterator.get_next(datetime)
        return found.astimezone(UTC)

    def _repeats(self, occurrence: datetime) -> bool:
        before: datetime = _croniter()(self.expression, occurrence).get_prev(datetime)
        return before.replace(tzinfo=None) == occurrence.replace(tzinfo=None)

    def resolution(self) -> str:
        """The finest unit in which occurrences vary (one of :data:`UNITS`)."""
        minutes, hours, days, months, weekdays = _croniter()(self.expression).expanded[:5]
        if not _single(minutes):
            return "minute"
        if not _single(hours):
            return "hour"
        if not _single(days) or weekdays != ["*"]:
            return "day"
        if not _single(months):
            return "month"
        return "year"


def parse_cron(expression: str, timezone: str = "UTC") -> Cron:
    """Validate a cron expression (naming the bad field) and a timezone."""
    croniter = _croniter()
    from croniter import CroniterError

    timezone = timezone_of(timezone).key
    text = " ".join(expression.split())
    if text.startswith("@"):
        if text.lower() not in _KEYWORDS:
            raise InvalidInputError(f"cron {expression!r} is not a known keyword; {_CRON_HELP}")
        text = text.lower()
    else:
        fields = text.split(" ") if text else []
        if len(fields) != len(FIELDS):
            raise InvalidInputError(
                f"cron {expression!r} has {len(fields)} field(s), not five; {_CRON_HELP}"
            )
        for index, value in enumerate(fields):
            probe = ["*"] * len(FIELDS)
            probe[index] = value
            try:
                croniter(" ".join(probe))
            except (CroniterError, ValueError, KeyError):
                raise InvalidInputError(
                    f"cron {expression!r}: the {FIELDS[index]} field {value!r} is not valid; "
                    f"it takes {_RANGES[index]} (lists a,b, ranges a-b and steps */n too)"
                ) from None
    cron = Cron(text, timezone)
    try:
        cron.next(datetime.now(UTC))
    except (CroniterError, ValueError):
        raise InvalidInputError(
            f"cron {expression!r} never occurs (a date that does not exist?)"
        ) from None
    return cron


def placeholders(template: str, what: str = "template") -> set[str]:
    """The placeholders ``template`` uses; an unknown one is an error."""
    used = set(_PLACEHOLDER.findall(template))
    unknown = sorted(used - PLACEHOLDERS.keys())
    if unknown:
        known = ", ".join("{" + name + "}" for name in PLACEHOLDERS)
        raise InvalidInputError(
            f"{what} {template!r} uses unknown placeholder(s) "
            f"{', '.join('{' + name + '}' for name in unknown)}; known: {known}"
        )
    return used


def render(template: str, occurrence: datetime, timezone: str = "UTC") -> str:
    """``template`` with its placeholders filled for ``occurrence`` (wall-clock time in
    ``timezone``); text that is not a known placeholder is left as it is."""
    placeholders(template)
    local = _aware(occurrence).astimezone(timezone_of(timezone))
    return _PLACEHOLDER.sub(lambda match: PLACEHOLDERS[match.group(1)](local), template)


def check_output_template(template: str, cron: Cron) -> None:
    """Refuse an output that two occurrences of ``cron`` could share (see the module docstring)."""
    used = placeholders(template, "output")
    needed = cron.resolution()
    for unit in reversed(UNITS[UNITS.index(needed) :]):  # year first, down to ``needed``
        if not any(group <= used for group in _TELLS_APART[unit]):
            missing = [p for p in _HINTS[needed].split(" or ")[0].split("/") if p not in template]
            example = template.rstrip("/") + "/" + "/".join(missing)
            raise InvalidInputError(
                f"output {template!r} would be the same folder for two runs of {cron.expression!r} "
                f"(it changes every {needed}); each run needs its own folder, since a finished "
                f"folder is never scored again: add {_HINTS[needed]}, e.g. {example}"
            )


def new_schedule(
    name: str,
    *,
    cron: str,
    model: str,
    input: str,
    output: str,
    timezone: str = "UTC",
    options: Mapping[str, Any] | None = None,
    enabled: bool = True,
) -> Schedule:
    """A validated :class:`Schedule`, ready for ``registry.schedules.create``.

    ``options`` are :class:`BatchOptions` fields other than model, input and output (``keep``,
    ``proba``, ``output_format``, ``workers``, ...), checked as ``seaway batch run`` checks them.
    """
    if not is_model_uri(model):
        raise InvalidInputError(
            f"{model!r} is not a model URI: schedules score registered models "
            "(models:/NAME@ALIAS, models:/NAME/VERSION, models:/NAME/latest)"
        )
    parse_model_uri(model)
    parsed = parse_cron(cron, timezone)
    placeholders(input, "input")
    check_output_template(output, parsed)
    params = dict(options or {})
    reserved = sorted({"model", "input", "output"} & params.keys())
    unknown = sorted(params.keys() - BatchOptions.__dataclass_fields__.keys())
    if reserved or unknown:
        raise InvalidInputError(f"schedule options {reserved + unknown} are not batch options")
    probe = datetime.now(UTC)
    checked = _options(
        model, render(input, probe, timezone), render(output, probe, timezone), params
    )
    return Schedule(
        name=name,
        cron=parsed.expression,
        timezone=parsed.timezone,
        model_uri=model,
        input=input,
        output=output,
        params=checked.params(),
        enabled=enabled,
    )


def due(schedule: Schedule, now: datetime) -> datetime | None:
    """The occurrence to run at ``now``, or None: the latest one due, if it is newer than the
    schedule's creation and than the last occurrence claimed. Older missed ones are never run."""
    occurrence = Cron(schedule.cron, schedule.timezone).latest(now)
    if schedule.created_at is not None and occurrence <= _aware(schedule.created_at):
        return None
    if schedule.last_occurrence is not None and occurrence <= _aware(schedule.last_occurrence):
        return None
    return occurrence


def options_for(schedule: Schedule, occurrence: datetime) -> BatchOptions:
    """What the run of ``schedule`` for ``occurrence`` scores: templates filled in."""
    return _options(
        schedule.model_uri,
        render(schedule.input, occurrence, schedule.timezone),
        render(schedule.output, occurrence, schedule.timezone),
        schedule.params,
    )


def _options(model: str, input: str, output: str, params: Mapping[str, Any]) -> BatchOptions:
    known = BatchOptions.__dataclass_fields__.keys() - {"model", "input", "output"}
    values: dict[str, Any] = {k: v for k, v in params.items() if k in known}
    for key in ("keep", "features"):
        values[key] = tuple(values.get(key, ()))
    return BatchOptions(model=model, input=input, output=output, **values)


def _single(values: list[Any]) -> bool:
    return len(values) == 1 and values != ["*"]


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise InvalidInputError(f"{value.isoformat()} has no timezone; pass an aware datetime")
    return value


def _croniter() -> Any:
    try:
        from croniter import croniter
    except ImportError as exc:  # pragma: no cover - croniter ships with the batch extra
        raise MissingDependencyError("croniter", "batch", "Batch schedules") from exc
    return croniter
