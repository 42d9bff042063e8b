"""Schedules as pure logic: cron and timezone checks, due and next occurrences, path templates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from seaway.batch.schedule import (
    PLACEHOLDERS,
    Cron,
    check_output_template,
    due,
    new_schedule,
    options_for,
    parse_cron,
    placeholders,
    render,
    timezone_of,
)
from seaway.errors import InvalidInputError
from seaway.registry.jobs import Schedule

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def schedule(
    cron: str = "0 2 * * *",
    *,
    timezone: str = "UTC",
    created_at: datetime | None = None,
    last_occurrence: datetime | None = None,
    input: str = "data/{date}/",
    output: str = "preds/{date}/",
    params: dict[str, object] | None = None,
) -> Schedule:
    return Schedule(
        name="nightly",
        cron=cron,
        model_uri="models:/fraud@production",
        input=input,
        output=output,
        params=dict(params or {}),
        timezone=timezone,
        created_at=created_at or utc(2026, 1, 1),
        last_occurrence=last_occurrence,
    )


# ---- cron and timezone --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "field"),
    [
        ("0 25 * * *", "hour"),
        ("61 2 * * *", "minute"),
        ("x 2 * * *", "minute"),
        ("0 2 32 * *", "day-of-month"),
        ("0 2 * 13 *", "month"),
        ("0 2 * * 8", "day-of-week"),
        ("0 2 * * mon-funday", "day-of-week"),
    ],
)
def test_a_bad_field_is_named(expression: str, field: str) -> None:
    with pytest.raises(InvalidInputError, match=f"the {field} field"):
        parse_cron(expression)


@pytest.mark.parametrize("expression", ["", "0 2 * *", "0 2 * * * 30", "0 2 * * * * 2030"])
def test_cron_needs_five_fields(expression: str) -> None:
    with pytest.raises(InvalidInputError, match="not five"):
        parse_cron(expression)


def test_keywords_and_spacing() -> None:
    assert parse_cron("@DAILY").expression == "@daily"
    assert parse_cron("  0   2 * *  * ").expression == "0 2 * * *"
    with pytest.raises(InvalidInputError, match="not a known keyword"):
        parse_cron("@reboot")


def test_a_cron_that_never_occurs_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="never occurs"):
        parse_cron("0 2 30 2 *")


def test_timezones() -> None:
    assert parse_cron("0 2 * * *").timezone == "UTC"
    assert parse_cron("0 2 * * *", "utc").timezone == "UTC"
    assert parse_cron("0 2 * * *", "Europe/Paris").timezone == "Europe/Paris"
    for bad in ["Europe/Pari", "", "../etc/passwd", "+02:00"]:
        with pytest.raises(InvalidInputError, match="unknown timezone"):
            timezone_of(bad)
        with pytest.raises(InvalidInputError, match="unknown timezone"):
            parse_cron("0 2 * * *", bad)


@pytest.mark.parametrize(
    ("expression", "unit"),
    [
        ("* * * * *", "minute"),
        ("*/15 * * * *", "minute"),
        ("0,30 2 * * *", "minute"),
        ("@hourly", "hour"),
        ("0 */6 * * *", "hour"),
        ("0 2 * * *", "day"),
        ("@daily", "day"),
        ("0 2 * * 1", "day"),
        ("0 2 1,15 * *", "day"),
        ("0 2 1 * *", "month"),
        ("0 0 L * *", "month"),
        ("0 2 1 1 *", "year"),
        ("@yearly", "year"),
    ],
)
def test_resolution(expression: str, unit: str) -> None:
    assert parse_cron(expression).resolution() == unit


# ---- latest due and next ------------------------------------------------------------------------


def test_latest_and_next_in_utc() -> None:
    cron = parse_cron("0 2 * * *")
    assert cron.latest(utc(2026, 11, 25, 1, 59, 59)) == utc(2026, 11, 24, 2)
    assert cron.latest(utc(2026, 11, 25, 2)) == utc(2026, 11, 25, 2)  # exactly on time: due
    assert cron.latest(utc(2026, 11, 25, 2, 0, 0, 999_999)) == utc(2026, 11, 25, 2)
    assert cron.latest(utc(2026, 11, 25, 23)) == utc(2026, 11, 25, 2)
    assert cron.next(utc(2026, 11, 25, 1, 59)) == utc(2026, 11, 25, 2)
    assert cron.next(utc(2026, 11, 25, 2)) == utc(2026, 11, 26, 2)  # strictly after
    assert cron.latest(utc(2026, 1, 1, 0, 30)) == utc(2025, 12, 31, 2)  # across a year


def test_latest_and_next_every_fifteen_minutes() -> None:
    cron = parse_cron("*/15 * * * *")
    assert cron.latest(utc(2026, 11, 25, 10, 44)) == utc(2026, 11, 25, 10, 30)
    assert cron.next(utc(2026, 11, 25, 10, 44)) == utc(2026, 11, 25, 10, 45)


def test_an_aware_now_in_another_zone_is_the_same_instant() -> None:
    cron = parse_cron("0 2 * * *")
    now = utc(2026, 11, 25, 3).astimezone(NEW_YORK)  # 22:00 the day before in New York
    assert cron.latest(now) == utc(2026, 11, 25, 2)


def test_a_naive_now_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="no timezone"):
        parse_cron("0 2 * * *").latest(datetime(2026, 11, 25, 3))


def test_cron_in_a_zone() -> None:
    cron = parse_cron("0 2 * * *", "America/New_York")  # 02:00 EST = 07:00 UTC in winter
    assert cron.latest(utc(2026, 1, 15, 6, 59)) == utc(2026, 1, 14, 7)
    assert cron.latest(utc(2026, 1, 15, 7)) == utc(2026, 1, 15, 7)
    assert cron.next(utc(2026, 1, 15, 7)) == utc(2026, 1, 16, 7)
    assert cron.latest(utc(2026, 7, 15, 6)) == utc(2026, 7, 15, 6)  # EDT in summer: 06:00 UTC


def test_a_wall_clock_time_that_happens_twice_runs_once() -> None:
    # Paris goes back from 03:00 CEST to 02:00 CET on 2026-10-25 (01:00 UTC): 02:30 happens twice
    daily = parse_cron("30 2 * * *", "Europe/Paris")
    first = datetime(2026, 10, 25, 2, 30, tzinfo=PARIS)  # CEST, 00:30 UTC
    assert first.astimezone(UTC) == utc(2026, 10, 25, 0, 30)
    for now in (utc(2026, 10, 25, 0, 45), utc(2026, 10, 25, 1, 45), utc(2026, 10, 25, 12)):
        assert daily.latest(now) == utc(2026, 10, 25, 0, 30)
    assert daily.next(utc(2026, 10, 25, 0, 45)) == datetime(2026, 10, 26, 2, 30, tzinfo=PARIS)
    hourly = parse_cron("30 * * * *", "Europe/Paris")
    assert hourly.next(utc(2026, 10, 25, 0, 45)) == utc(2026, 10, 25, 2, 30)  # 03:30 CET


def test_a_wall_clock_time_that_does_not_happen_runs_once_later() -> None:
    # Paris jumps from 02:00 to 03:00 on 2026-03-29: 02:30 does not happen that day
    daily = parse_cron("30 2 * * *", "Europe/Paris")
    occurrence = daily.latest(utc(2026, 3, 29, 12))
    assert utc(2026, 3, 29) < occurrence < utc(2026, 3, 29, 2)
    assert render("{date}", occurrence, "Europe/Paris") == "2026-03-29"
    assert daily.latest(utc(2026, 3, 30, 0, 29)) == occurrence


# ---- due: creation, claims, downtime ------------------------------------------------------------


def test_nothing_is_due_before_the_first_occurrence_after_creation() -> None:
    created = utc(2026, 11, 25, 10)
    s = schedule(created_at=created)
    assert due(s, utc(2026, 11, 25, 11)) is None  # 02:00 today was before the schedule existed
    assert due(s, utc(2026, 11, 26, 1, 59)) is None
    assert due(s, utc(2026, 11, 26, 2)) == utc(2026, 11, 26, 2)


def test_an_occurrence_at_the_creation_instant_does_not_run() -> None:
    s = schedule(created_at=utc(2026, 11, 25, 2))
    assert due(s, utc(2026, 11, 25, 3)) is None


def test_a_claimed_occurrence_is_not_due_again() -> None:
    s = schedule(created_at=utc(2026, 11, 1), last_occurrence=utc(2026, 11, 25, 2))
    assert due(s, utc(2026, 11, 25, 2, 1)) is None
    assert due(s, utc(2026, 11, 26, 2)) == utc(2026, 11, 26, 2)


def test_missed_occurrences_collapse_to_the_latest() -> None:
    # the scheduler was down from the 20th to the 25th: five daily occurrences were missed
    s = schedule(created_at=utc(2026, 11, 1), last_occurrence=utc(2026, 11, 20, 2))
    assert due(s, utc(2026, 11, 25, 9)) == utc(2026, 11, 25, 2)
    claimed = schedule(created_at=utc(2026, 11, 1), last_occurrence=utc(2026, 11, 25, 2))
    assert due(claimed, utc(2026, 11, 25, 9)) is None  # and only that one: nothing else is due
    never_ran = schedule(created_at=utc(2026, 11, 1))
    assert due(never_ran, utc(2026, 11, 25, 9)) == utc(2026, 11, 25, 2)


def test_due_in_a_zone() -> None:
    s = schedule(timezone="America/New_York", created_at=utc(2026, 1, 1))
    assert due(s, utc(2026, 1, 15, 6, 59)) == utc(2026, 1, 14, 7)
    assert due(s, utc(2026, 1, 15, 7)) == utc(2026, 1, 15, 7)


# ---- templates ----------------------------------------------------------------------------------


def test_render_every_placeholder() -> None:
    at = utc(2026, 3, 5, 7, 9)
    assert render("{date}|{datetime}|{yyyy}|{mm}|{dd}|{hh}", at) == (
        "2026-03-05|20260305T0709|2026|03|05|07"
    )
    assert set(PLACEHOLDERS) == {"date", "datetime", "yyyy", "mm", "dd", "hh"}


def test_render_uses_the_schedules_wall_clock() -> None:
    at = utc(2026, 1, 15, 3)  # 22:00 on the 14th in New York
    assert render("s3://bucket/data/{date}/", at, "America/New_York") == (
        "s3://bucket/data/2026-01-14/"
    )
    assert render("preds/{date}/{hh}", at) == "preds/2026-01-15/03"


def test_render_leaves_other_text_alone() -> None:
    at = utc(2026, 3, 5)
    assert render("data/part-*.parquet", at) == "data/part-*.parquet"
    assert render("data/{date}/x{1,2}.csv", at) == "data/2026-03-05/x{1,2}.csv"


def test_unknown_placeholders_are_refused() -> None:
    with pytest.raises(InvalidInputError, match=r"\{day\}.*known: \{date\}"):
        render("data/{day}/", utc(2026, 3, 5))
    assert placeholders("a/{yyyy}/{mm}/{yyyy}") == {"yyyy", "mm"}


@pytest.mark.parametrize(
    ("cron", "output"),
    [
        ("0 2 * * *", "preds/{date}/"),
        ("0 2 * * *", "preds/{yyyy}/{mm}/{dd}/"),
        ("0 2 * * *", "preds/{datetime}/"),
        ("@hourly", "preds/{date}/{hh}/"),
        ("@hourly", "preds/{datetime}/"),
        ("*/5 * * * *", "preds/{datetime}/"),
        ("0 2 1 * *", "preds/{yyyy}-{mm}/"),
        ("@yearly", "preds/{yyyy}/"),
    ],
)
def test_outputs_that_tell_occurrences_apart(cron: str, output: str) -> None:
    check_output_template(output, parse_cron(cron))


@pytest.mark.parametrize(
    ("cron", "output", "hint"),
    [
        ("0 2 * * *", "preds/", r"add \{date\}, e\.g\. preds/\{date\}"),
        ("0 2 * * *", "preds/{dd}/", r"\{date\}"),  # the same folder a month later
        ("0 2 * * *", "preds/{mm}-{dd}/", r"\{date\}"),  # a year later
        (
            "@hourly",
            "preds/{date}/",
            r"\{date\}/\{hh\} or \{datetime\}, e\.g\. preds/\{date\}/\{hh\}$",
        ),
        ("0,30 2 * * *", "preds/{date}/{hh}/", r"\{datetime\}"),
        ("0 2 1 * *", "preds/{yyyy}/", r"\{yyyy\}/\{mm\} or \{date\}"),
    ],
)
def test_outputs_shared_by_two_occurrences_are_refused(cron: str, output: str, hint: str) -> None:
    with pytest.raises(InvalidInputError, match="same folder for two runs") as caught:
        check_output_template(output, parse_cron(cron))
    assert caught.match(hint)


def test_a_checked_template_really_differs_between_consecutive_occurrences() -> None:
    cron = parse_cron("0 */6 * * *", "Europe/Paris")
    check_output_template("p/{date}/{hh}", cron)
    now = utc(2026, 10, 20)
    seen = set()
    for _ in range(40):
        occurrence = cron.next(now)
        seen.add(render("p/{date}/{hh}", occurrence, cron.timezone))
        now = occurrence
    assert len(seen) == 40


# ---- new_schedule and options_for ---------------------------------------------------------------


def test_new_schedule_checks_and_normalises() -> None:
    made = new_schedule(
        "nightly",
        cron="0  2 * * *",
        model="models:/fraud@production",
        input="data/{date}/",
        output="preds/{date}/",
        timezone="utc",
        options={"keep": ["id"], "proba": True, "workers": 2, "output_format": "csv"},
    )
    assert (made.cron, made.timezone, made.enabled) == ("0 2 * * *", "UTC", True)
    assert made.params["keep"] == ["id"] and made.params["workers"] == 2
    assert made.params["output_format"] == "csv" and made.params["chunk_rows"] == 100_000
    assert "model" not in made.params and "input" not in made.params


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"model": "./package"}, "not a model URI"),
        ({"model": "models:/"}, "models:/"),
        ({"cron": "0 2 * *"}, "not five"),
        ({"timezone": "Mars/Olympus"}, "unknown timezone"),
        ({"output": "preds/"}, "same folder"),
        ({"input": "data/{today}/"}, r"input 'data/\{today\}/' uses unknown"),
        ({"options": {"workers": 0}}, "--workers must be at least 1"),
        ({"options": {"chunk_rows": 0}}, "--chunk-rows"),
        ({"options": {"output_format": "xlsx"}}, "--format must be parquet or csv"),
        ({"options": {"on_error": "ignore"}}, "--on-error"),
        ({"options": {"colour": "blue"}}, "not batch options"),
        ({"options": {"output": "elsewhere"}}, "not batch options"),
    ],
)
def test_new_schedule_refuses(changes: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {
        "cron": "0 2 * * *",
        "model": "models:/fraud@production",
        "input": "data/{date}/",
        "output": "preds/{date}/",
        **changes,
    }
    with pytest.raises(Exception, match=message):
        new_schedule("nightly", **arguments)  # type: ignore[arg-type]


def test_options_for_an_occurrence() -> None:
    made = new_schedule(
        "nightly",
        cron="0 2 * * *",
        model="models:/fraud@production",
        input="s3://b/data/{date}/*.parquet",
        output="s3://b/preds/{yyyy}/{mm}/{dd}",
        timezone="Europe/Paris",
        options={"keep": ["id"], "features": ("a", "b"), "chunk_rows": 10},
    )
    options = options_for(made, utc(2026, 11, 25, 1))  # 02:00 in Paris
    assert options.model == "models:/fraud@production"
    assert options.input == "s3://b/data/2026-11-25/*.parquet"
    assert options.output == "s3://b/preds/2026/11/25"
    assert (options.keep, options.features, options.chunk_rows) == (("id",), ("a", "b"), 10)


def test_cron_dataclass_round_trips_what_schedules_store() -> None:
    s = schedule(cron="@daily", timezone="Europe/Paris")
    assert Cron(s.cron, s.timezone).latest(utc(2026, 11, 25, 12)) == utc(2026, 11, 24, 23)
    assert Cron(s.cron, s.timezone).next(utc(2026, 11, 25, 12)) - utc(2026, 11, 25, 12) == (
        timedelta(hours=11)
    )
