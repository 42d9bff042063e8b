"""The drift report as one self-contained HTML file: a view of formatted values, rendered by a
Jinja2 template shipped with the package.

The file must open offline and years later: no script, no CDN, no fetch. CSS is inline, charts
are inline SVG (``charts.py``), and a Content-Security-Policy of ``default-src 'none'`` makes the
browser refuse anything that would leave the page. Jinja2's autoescaping covers every value that
comes from data (feature names, category labels, model names); charts arrive as ``Markup`` that
escaped its own text.

``report_view.report_view`` turns drift results into a :class:`ReportView`;
:func:`render_report` turns that into HTML.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

from markupsafe import Markup

from seaway.errors import MissingDependencyError

if TYPE_CHECKING:
    import jinja2

TEMPLATE = "report.html.j2"


@dataclass(frozen=True)
class FeatureView:
    """One row of a drift table and its chart; every field is display text (or SVG markup)."""

    name: str
    anchor: str  # a safe HTML id ("f-3"): feature names may hold any character
    kind: str
    test: str
    statistic: str
    threshold: str
    effect: str
    missing: str
    drifted: bool
    chart: Markup
    note: str = ""


@dataclass(frozen=True)
class MultivariateView:
    test: str
    description: str
    statistic: str
    threshold: str
    reference: str
    drifted: bool
    chart: Markup | None = None


@dataclass(frozen=True)
class ReportView:
    """Everything the page shows, already formatted."""

    model: str
    version: str
    window: str
    current_rows: str
    reference_rows: str
    generated: str
    verdict: str
    verdict_class: str  # "bad", "ok" or "na"
    features: list[FeatureView]
    multivariate: MultivariateView | None = None
    predictions: list[FeatureView] = field(default_factory=list)
    predictions_verdict: str = ""
    predictions_class: str = "na"
    predictions_missing: str = "No predictions profile: prediction drift is not available."
    bucket: str = "hour"
    drift_over_time: Markup | None = None
    performance: Markup | None = None
    performance_missing: str = "No performance figures in this window."
    notes: list[str] = field(default_factory=list)


def render_report(view: ReportView) -> str:
    """The report's HTML."""
    return _environment().get_template(TEMPLATE).render(r=view)


@cache
def _environment() -> jinja2.Environment:
    try:
        import jinja2
    except ImportError as exc:  # pragma: no cover - the extra is installed in the tests
        raise MissingDependencyError("jinja2", "monitor", "The monitoring report") from exc
    return jinja2.Environment(
        loader=jinja2.PackageLoader("seaway.monitoring", "templates"),
        autoescape=True,  # every value is data; charts come as Markup
        undefined=jinja2.StrictUndefined,  # a misspelt field fails the tests, not the reader
        trim_blocks=True,
        lstrip_blocks=True,
    )


def anchor(prefix: str, index: int) -> str:
    """An HTML id for the ``index``-th feature: never derived from the name, which may be hostile."""
    return f"{prefix}-{index}"


def as_markup(svg: Any) -> Markup:
    """Markup as it is; anything else escaped (a chart is Markup, never a plain str)."""
    return svg if isinstance(svg, Markup) else Markup.escape(svg)
