"""The report's inline SVG charts: well-formed, escaped, one mark per bin or category."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest

from seaway.monitoring import charts

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = '<script>alert("x")</script>&"\''


def parse(markup: str) -> ET.Element:
    """The chart as XML: a chart that does not parse would break the page around it."""
    return ET.fromstring(str(markup))


def by_class(root: ET.Element, tag: str, css: str) -> list[ET.Element]:
    return [e for e in root.iter(SVG + tag) if css in (e.get("class") or "").split()]


def test_numeric_chart_draws_both_sides_over_every_bin() -> None:
    edges = [1.0, 2.0, 3.0]
    root = parse(charts.numeric_chart("x", edges, [1, 2, 3, 4], [4, 3, 2, 1], low=0.0, high=4.0))
    assert len(by_class(root, "path", "ref")) == 1
    assert len(by_class(root, "path", "cur")) == 1
    hits = by_class(root, "rect", "hit")
    assert len(hits) == 4  # one tooltip per bin
    tips = [h.find(SVG + "title").text for h in hits]  # type: ignore[union-attr]
    assert tips[0] == "at most 1: reference 10.0%, current 40.0%"
    assert tips[-1] == "above 3: reference 40.0%, current 10.0%"


def test_numeric_chart_densities_not_shares() -> None:
    """Bins of unequal width: a flat density draws one height whatever the bin widths."""
    edges = [2.0, 6.0]  # bins [1, 2], (2, 6], (6, 7]: widths 1, 4, 1
    root = parse(charts.numeric_chart("x", edges, [1, 4, 1], [1, 4, 1], low=1.0, high=7.0))
    path = by_class(root, "path", "ref")[0].get("d") or ""
    heights = {
        float(point.split(",")[1]) for point in path.rstrip("Z").replace("M", "L").split("L")[1:]
    }
    assert len(heights) == 2  # the baseline and one level


def test_numeric_chart_merges_fine_bins() -> None:
    edges = [float(i) for i in range(1, 100)]  # 100 bins
    root = parse(charts.numeric_chart("x", edges, [1] * 100, [1] * 100, max_bins=25))
    assert len(by_class(root, "rect", "hit")) == 25


def test_numeric_chart_clips_a_far_outlier() -> None:
    """An outlier at 1e9 does not squash the inner bins into a sliver."""
    root = parse(charts.numeric_chart("x", [0.0, 1.0], [1, 1, 1], [1, 1, 1], low=-1.0, high=1e9))
    hits = by_class(root, "rect", "hit")
    widths = [float(h.get("width") or 0) for h in hits]
    assert widths[1] >= widths[2] * 3.9  # clipped to a quarter of the inner span


@pytest.mark.parametrize(("low", "high"), [(5.0, 5.0), (None, None), (2.0, 7.0)])
def test_numeric_chart_of_a_constant_feature(low: float | None, high: float | None) -> None:
    root = parse(charts.numeric_chart("c", [], [10], [3], low=low, high=high))
    assert len(by_class(root, "rect", "hit")) == 1


def test_numeric_chart_of_an_empty_side() -> None:
    root = parse(charts.numeric_chart("c", [1.0], [0, 0], [0, 5]))
    assert by_class(root, "path", "cur")


def test_numeric_chart_refuses_counts_that_do_not_match_the_bins() -> None:
    with pytest.raises(ValueError, match="one count per bin"):
        charts.numeric_chart("x", [1.0, 2.0], [1, 2], [1, 2, 3])


def test_category_chart_marks_new_categories() -> None:
    bars = [
        charts.Bar("a", 0.6, 0.5),
        charts.Bar("b", 0.4, 0.3),
        charts.Bar("fresh", 0.0, 0.2, new=True),
    ]
    root = parse(charts.category_chart("cat", bars))
    groups = [g for g in root.iter(SVG + "g") if g.get("class") == "bar"]
    assert len(groups) == 3
    new = by_class(root, "rect", "new")
    assert len(new) == 2  # the legend's swatch and the new category's bar
    assert groups[2].find(SVG + "title").text == "fresh: reference 0.0%, current 20.0% (new)"  # type: ignore[union-attr]


def test_category_chart_truncates_long_labels_but_keeps_them_whole_in_the_tooltip() -> None:
    label = "a-very-long-category-label-that-goes-on"
    root = parse(charts.category_chart("cat", [charts.Bar(label, 1.0, 1.0)]))
    texts = [t.text for t in root.iter(SVG + "text")]
    assert label not in texts
    assert any(t and t.endswith("…") for t in texts)
    assert label in (root.find(f"{SVG}g/{SVG}title").text or "")  # type: ignore[union-attr]


def test_hostile_text_is_escaped_everywhere() -> None:
    when = [datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=h) for h in range(3)]
    for markup in (
        charts.numeric_chart(HOSTILE, [1.0], [1, 1], [1, 1]),
        charts.category_chart(HOSTILE, [charts.Bar(HOSTILE, 0.5, 0.5, new=True)]),
        charts.time_chart(HOSTILE, when, {HOSTILE: [1.0, 2.0, 3.0]}),
    ):
        assert "<script>" not in markup
        root = parse(markup)  # quotes in attributes escaped too, or this fails
        assert root.get("aria-label") == HOSTILE
        assert root.find(SVG + "title").text == HOSTILE  # type: ignore[union-attr]


def test_time_chart_breaks_lines_at_missing_values() -> None:
    when = [datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=h) for h in range(6)]
    values = [0.9, 0.91, None, 0.92, 0.93, math.nan]
    root = parse(charts.time_chart("perf", when, {"accuracy": values}, threshold=0.8, percent=True))
    assert len(by_class(root, "path", "line")) == 2  # [0, 1] and [3, 4]
    assert len(by_class(root, "circle", "dot")) == 4
    assert len(by_class(root, "line", "threshold")) == 2  # the line and its legend


def test_time_chart_without_buckets_says_so() -> None:
    root = parse(charts.time_chart("perf", [], {}))
    assert "no data" in "".join(root.itertext())


def test_nice_ticks_are_round_and_inside() -> None:
    assert charts.nice_ticks(0.0, 1.0, 4) == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ticks = charts.nice_ticks(-3.2, 7.9, 4)
    assert ticks == [-2.0, 0.0, 2.0, 4.0, 6.0]
    assert charts.nice_ticks(5.0, 5.0) == [5.0]
    assert charts.nice_ticks(math.nan, 1.0) == []


def test_fmt() -> None:
    assert charts.fmt(None) == "-"
    assert charts.fmt(math.nan) == "-"
    assert charts.fmt(0.0) == "0"
    assert charts.fmt(0.123456) == "0.1235"
    assert charts.fmt(1.5e-7) == "1.50e-07"
    assert charts.fmt(-math.inf) == "-inf"
