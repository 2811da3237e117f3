"""What a page is made of: charts, tables, KPI tiles, bullet lists and "no data yet" notices.

Strings from the data reach the browser in two ways, both escaped: jinja2 autoescapes every
table cell and text, and `esc` HTML-escapes labels before they go into a Plotly figure
(Plotly renders a small HTML subset in labels; escaped, a `<script>` brand shows as text).
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from markupsafe import Markup

# Amounts on the pages: REES46 prices are US dollars, and the synthetic shop is priced in the
# same unit.
CURRENCY = "USD"
CURRENCY_SYMBOL = "$"

PLOT_CONFIG = {
    "displaylogo": False,
    "responsive": True,
    "modeBarButtonsToRemove": ["sendDataToCloud"],
}
PALETTE = [
    "#2f6fb0",
    "#e07b39",
    "#3a9d5d",
    "#c8453c",
    "#8b6bb8",
    "#8c6d4f",
    "#d46fa8",
    "#7f7f7f",
    "#b5b536",
    "#2bb3c0",
]


def _esc(value: Any) -> Any:
    # &, < and > only: Plotly decodes &amp; &lt; &gt; back for display but not &quot;, and
    # with no "<" left its label parser finds no tags, so quotes are harmless.
    return html.escape(value, quote=False) if isinstance(value, str) else value


def esc(values: Any) -> Any:
    """HTML-escape a string, or every string in a Series / list, for use inside a figure."""
    if isinstance(values, pd.Series):
        return values.map(_esc)
    if isinstance(values, list | tuple):
        return [_esc(v) for v in values]
    return _esc(values)


_AXIS = {
    "gridcolor": "#e8edf3",
    "linecolor": "#c9d3de",
    "zerolinecolor": "#c9d3de",
    "automargin": True,
}
# A small template of our own: plotly's built-in ones are large, and validating one into every
# figure dominated the build time (and every page's size).
SITE_TEMPLATE = go.layout.Template(
    layout={
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "colorway": PALETTE,
        "font": {"family": "system-ui, sans-serif", "size": 12, "color": "#1f2a37"},
        "xaxis": _AXIS,
        "yaxis": _AXIS,
        "hoverlabel": {"align": "left"},
    }
)


@contextmanager
def site_template() -> Iterator[None]:
    """Make SITE_TEMPLATE plotly's default while the site is built (restored afterwards)."""
    previous = pio.templates.default
    pio.templates["shoplens"] = SITE_TEMPLATE
    pio.templates.default = "shoplens"
    try:
        yield
    finally:
        pio.templates.default = previous


def style(fig: go.Figure, height: int = 420, **layout: Any) -> go.Figure:
    """The site's common figure look: height, margins and a horizontal legend below."""
    base: dict[str, Any] = {
        "height": height,
        "margin": {"l": 60, "r": 30, "t": 30, "b": 60},
        "legend": {"orientation": "h", "y": -0.2},
    }
    fig.update_layout(**{**base, **layout})
    return fig


@dataclass
class Chart:
    """A Plotly figure with a title and a one-line reading guide."""

    title: str
    figure: go.Figure
    note: str = ""
    kind: str = field(default="chart", init=False)

    def render(self, div_id: str) -> Markup:
        """The figure as an HTML div that calls the site's shared plotly.js."""
        return Markup(
            pio.to_html(
                self.figure,
                full_html=False,
                include_plotlyjs=False,
                div_id=div_id,
                config=PLOT_CONFIG,
            )
        )


@dataclass
class Table:
    """A small table (columns and rows are rendered escaped); `anchor` is its element id."""

    title: str
    columns: list[str]
    rows: list[list[Any]]
    note: str = ""
    anchor: str = ""
    kind: str = field(default="table", init=False)

    @classmethod
    def from_frame(
        cls,
        title: str,
        frame: pd.DataFrame,
        note: str = "",
        formats: dict[str, str] | None = None,
        anchor: str = "",
    ) -> Table:
        """Build from a DataFrame, formatting columns with `formats` ({column: format spec})."""
        formats = formats or {}
        rows = [
            [_cell(v, formats.get(c)) for c, v in zip(frame.columns, rec, strict=True)]
            for rec in frame.itertuples(index=False)
        ]
        return cls(title, [str(c) for c in frame.columns], rows, note, anchor)


def _cell(value: Any, spec: str | None) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    if spec:
        return format(value, spec)
    if isinstance(value, float):
        return f"{value:,.3f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


@dataclass
class Tile:
    """One KPI: its value, the previous period's value and how to format both."""

    key: str
    label: str
    value: float | None
    previous: float | None
    unit: str = "count"  # count, money or rate
    higher_is_better: bool = True

    def display(self) -> str:
        """The value as shown on the tile."""
        return format_value(self.value, self.unit)

    def change(self) -> str:
        """Change against the previous period: percent for counts and money, points for rates."""
        if self.value is None or self.previous is None:
            return "no previous period"
        if self.unit == "rate":
            return f"{(self.value - self.previous) * 100:+.1f} pp vs previous period"
        if self.previous == 0:
            return "previous period was zero"
        return f"{(self.value / self.previous - 1) * 100:+.1f}% vs previous period"

    def tone(self) -> str:
        """good, bad or flat: whether the change is welcome (for colouring)."""
        if self.value is None or self.previous is None or self.value == self.previous:
            return "flat"
        return "good" if (self.value > self.previous) == self.higher_is_better else "bad"


def format_value(value: float | None, unit: str) -> str:
    """Format a KPI value: counts with separators, money with 2 decimals and the currency,
    rates as percent."""
    if value is None:
        return "n/a"
    if unit == "rate":
        return f"{value * 100:.1f}%"
    if unit == "money":
        return f"{'-' if value < 0 else ''}{CURRENCY_SYMBOL}{abs(value):,.2f}"
    return f"{value:,.0f}"


@dataclass
class Tiles:
    """A row of KPI tiles."""

    title: str
    tiles: list[Tile]
    note: str = ""
    kind: str = field(default="tiles", init=False)


@dataclass(frozen=True)
class Link:
    """A link from a finding to what acts on it (another page, or a section of one)."""

    label: str
    href: str


@dataclass
class Bullets:
    """A list of findings in plain words; `links[i]`, when there, follows item i."""

    title: str
    items: list[str]
    note: str = ""
    links: list[Link | None] = field(default_factory=list)
    kind: str = field(default="bullets", init=False)


@dataclass
class Notice:
    """What a section would show, and why there is nothing to show yet."""

    title: str
    message: str
    note: str = ""
    kind: str = field(default="notice", init=False)


Section = Chart | Table | Tiles | Bullets | Notice


@dataclass
class Page:
    """One HTML page of the site."""

    slug: str
    title: str
    intro: str
    sections: list[Section]

    @property
    def filename(self) -> str:
        return "index.html" if self.slug == "index" else f"{self.slug}.html"


def chart_count(sections: Iterable[Section]) -> int:
    """How many chart containers the sections produce."""
    return sum(1 for s in sections if isinstance(s, Chart))
