"""The drift report from synthetic results: a chart per feature, hostile names escaped, the
window's buckets over time, verdicts, and a page that needs nothing but itself."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from seaway.monitoring import describe
from seaway.monitoring.drift import drift
from seaway.monitoring.metrics import Metric
from seaway.monitoring.performance import WindowPerformance
from seaway.monitoring.report import render_report
from seaway.monitoring.report_view import pick_bucket, report_view
from seaway.monitoring.summary import merge_all, summarize
from seaway.monitoring.window import Reference, WindowDrift, by_bucket
from seaway.packaging.profile import build_profile

HOSTILE = '<img src=x onerror="window.pwned=1">'
SINCE = datetime(2026, 1, 1, tzinfo=UTC)


def frame(rng: np.random.Generator, n: int, shift: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": rng.normal(40 + shift * 10, 10, n),
            "income": rng.lognormal(10, 0.5, n),
            HOSTILE: rng.normal(0, 1, n),
            "flag": rng.integers(0, 2, n),
            "city": rng.choice(["paris", "lyon", "<b>nice</b>"], n, p=[0.5, 0.3, 0.2]),
        }
    )


def assessed(
    shift: float = 0.0, new_city: str | None = None, drop: str | None = None, hours: int = 6
) -> WindowDrift:
    """A window of ``hours`` hourly parts, the last two shifted by ``shift`` (and, with
    ``new_city``, holding a category the reference never had)."""
    rng = np.random.default_rng(1)
    reference = frame(rng, 4000)
    profile = build_profile(reference)
    parts = []
    for hour in range(hours):
        part = frame(rng, 400, shift if hour >= hours - 2 else 0.0)
        if new_city and hour >= hours - 2:
            part.loc[part.index[:40], "city"] = new_city
        if drop:
            part = part.drop(columns=[drop])
        times = [SINCE + timedelta(hours=hour, minutes=m % 60) for m in range(len(part))]
        parts.append(summarize(part, profile, times=times))
    summary = merge_all(parts)
    return WindowDrift(
        reference=Reference("fraud<x>", "3", profile, None),
        since=SINCE,
        until=SINCE + timedelta(hours=hours),
        summary=summary,
        result=drift(profile, summary),
        summaries=tuple(parts),
    )


def render(window: WindowDrift, **options: object) -> str:
    view = report_view(
        window, window=f"{(window.until - window.since).total_seconds() / 3600:.0f}h",
        bucket=timedelta(hours=1), now=SINCE, **options,  # type: ignore[arg-type]
    )  # fmt: skip
    return render_report(view)


class _Cards(HTMLParser):
    """The feature cards (``data-feature``) and how many SVG charts each holds."""

    def __init__(self) -> None:
        super().__init__()
        self.cards: dict[str, int] = {}
        self._current: str | None = None
        self.scripts = 0
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "div" and "data-feature" in found:
            self._current = found["data-feature"]
            self.cards[self._current or ""] = 0
        elif tag == "svg" and self._current is not None:
            self.cards[self._current] += 1
        elif tag == "script":
            self.scripts += 1
        for key in ("src", "href"):
            value = found.get(key)
            if value and not value.startswith("#"):
                self.external.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self._current = None


def cards(html: str) -> _Cards:
    parser = _Cards()
    parser.feed(html)
    return parser


def test_every_feature_gets_a_card_with_one_chart() -> None:
    window = assessed(shift=0.5)
    found = cards(render(window))
    assert found.cards == dict.fromkeys(window.reference.profile.features, 1)
    assert found.scripts == 0
    assert found.external == []


def test_hostile_feature_names_and_labels_are_escaped() -> None:
    html = render(assessed(new_city="<script>alert(1)</script>"))
    assert HOSTILE not in html
    assert "<script>" not in html
    assert "<b>nice</b>" not in html
    # escaped, they read as written
    assert "&lt;img src=x onerror=&#34;window.pwned=1&#34;&gt;" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert cards(html).cards[HOSTILE] == 1  # the parser unescapes the attribute
    # anchors come from positions, never from names
    assert re.findall(r'id="(f-\d+)"', html) == [f"f-{i}" for i in range(5)]


def test_every_chart_is_well_formed_svg() -> None:
    html = render(assessed(shift=0.5, new_city="brest"))
    charts = re.findall(r"<svg .*?</svg>", html, flags=re.DOTALL)
    assert len(charts) >= 5 + 2  # the features, drift over time, the multivariate error
    for chart in charts:
        ET.fromstring(chart)


def test_a_feature_missing_from_the_window_keeps_its_reference_chart() -> None:
    window = assessed(drop="income")
    html = render(window)
    assert window.result.skipped == ("income",)
    assert cards(html).cards["income"] == 1
    assert "not in the window&#39;s log" in html
    assert "Not in the log (excluded or absent): income." in html


def test_new_categories_are_marked_in_their_chart() -> None:
    html = render(assessed(new_city="brest"))
    card = html[html.index('data-feature="city"') :]
    card = card[: card.index("</svg>")]
    assert 'class="cur new"' in card
    assert "brest: reference 0.0%, current" in card


def test_verdicts_follow_the_result() -> None:
    calm, shifted = assessed(), assessed(shift=0.8)
    assert not calm.result.drifted
    assert shifted.result.drifted
    assert 'class="verdict ok"' in render(calm)
    html = render(shifted)
    assert 'class="verdict bad"' in html
    assert describe.verdict(shifted.result, "inputs") in html.replace("&#39;", "'")


def test_drift_over_time_has_one_point_per_bucket_that_has_data() -> None:
    html = render(assessed(shift=0.8, hours=6))
    section = html[html.index('id="over-time"') :]
    chart = section[section.index("<svg") : section.index("</svg>") + 6]
    root = ET.fromstring(chart)
    dots = [e for e in root.iter() if (e.get("class") or "").startswith("dot")]
    titles = [e.findtext("{http://www.w3.org/2000/svg}title") or "" for e in dots]
    per_series: dict[str, int] = {}
    for title in titles:
        name = title.split(" 2026-")[0]
        per_series[name] = per_series.get(name, 0) + 1
    assert set(per_series.values()) == {6}  # six hourly buckets, each with its part
    assert "age" in per_series  # the shifted feature is among those drawn


def test_performance_over_time_draws_realised_and_estimated() -> None:
    window = assessed()
    figures = [
        WindowPerformance(
            model="fraud",
            version="3",
            start=SINCE + timedelta(hours=h),
            end=SINCE + timedelta(hours=h + 1),
            task="classifier",
            rows=100,
            labelled=50 if h % 2 else 0,
            realised={"accuracy": Metric("accuracy", 0.9 if h % 2 else None, None)},
            estimated={"accuracy": Metric("accuracy", 0.88)},
        )
        for h in range(6)
    ]
    html = render(window, performance=figures)
    assert "realised accuracy" in html and "estimated accuracy" in html
    assert "No performance figures" not in html
    assert "No performance figures" in render(window)


@pytest.mark.parametrize(
    ("span", "bucket"),
    [
        (timedelta(minutes=30), timedelta(minutes=1)),
        (timedelta(hours=24), timedelta(hours=1)),
        (timedelta(days=7), timedelta(hours=6)),
        (timedelta(days=30), timedelta(days=1)),
        (timedelta(days=3650), timedelta(days=7)),
    ],
)
def test_pick_bucket(span: timedelta, bucket: timedelta) -> None:
    assert pick_bucket(span) == bucket


def test_effect_texts() -> None:
    row = assessed(shift=0.8).result.feature("age")
    assert describe.effect(row).endswith("sd")
    assert re.fullmatch(r"[+-]\d\.\d\dsd, std x\d\.\d\d", describe.effect(row, full=True))
    city = assessed(new_city="brest").result.feature("city")
    assert describe.effect(city).startswith("new ")


def test_parts_merge_into_the_bucket_of_their_first_row() -> None:
    window = assessed(hours=6)
    buckets = by_bucket(
        window.summaries, since=window.since, until=window.until, bucket=timedelta(hours=2)
    )
    assert [start for start, _ in buckets] == [SINCE + timedelta(hours=h) for h in (0, 2, 4)]
    assert [s.n_rows for _, s in buckets if s is not None] == [800, 800, 800]
    hourly = by_bucket(
        window.summaries[:3], since=window.since, until=window.until, bucket=timedelta(hours=1)
    )
    assert [s is not None for _, s in hourly] == [True] * 3 + [False] * 3
