"""Drawing helpers shared by the profile and exploration reports.

Figures are :class:`matplotlib.figure.Figure` objects with their own Agg canvas, so
nothing here touches pyplot, the global backend or rcParams (as in the evaluation
report). matplotlib is imported only when a figure is drawn. Grids of small panels
are laid out with fixed margins rather than a layout engine, which would cost more
than the drawing itself with dozens of axes.
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sagelab._imports import require

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["COLORS", "Panels", "Plot", "label", "missing", "new_figure", "png", "short"]

COLORS = (
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#9467bd",
    "#ff7f0e",
    "#8c564b",
    "#17becf",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
)
_DPI = 80


@dataclass(frozen=True)
class Plot:
    """One figure of a report, or why it could not be drawn.

    Attributes:
        name: a file-name-safe identifier (``histograms``); the PNG is ``<name>.png``.
        title: the heading shown above it.
        caption: how to read it, or (when ``png`` is None) why it is missing.
        png: the image, or None when the data does not allow this plot.
    """

    name: str
    title: str
    caption: str
    png: bytes | None


def missing(name: str, title: str, why: str) -> Plot:
    """A plot that could not be drawn, with the reason shown in its place."""
    return Plot(name, title, why, None)


def new_figure(width: float, height: float, *, layout: str | None = None) -> Figure:
    """A figure with its own Agg canvas, independent of pyplot and the global backend.

    Raises:
        ImportError: matplotlib is not installed.
    """
    figure_mod = require("matplotlib.figure", "The report's plots", "matplotlib", "prep")
    agg = require("matplotlib.backends.backend_agg", "The report's plots", "matplotlib", "prep")
    fig: Figure = figure_mod.Figure(figsize=(width, height), dpi=_DPI, layout=layout)
    agg.FigureCanvasAgg(fig)
    return fig


class Panels:
    """Small multiples drawn on one borderless axes, one unit cell per panel.

    A grid of real axes costs a few hundred tick and text artists per panel, which
    is most of the drawing time; here panel ``n`` is the cell ``[col, col + 1] ×
    [-row - 1, -row]`` of a single axes, each panel's data is mapped into its cell's
    plotting area (:meth:`area`), and only a title and a few labels are text.

    Args:
        count: the number of panels.
        columns: panels to a row.
        cell: one panel's size in inches.
        pad: room left of and below the panels, in cells (for axis names).
    """

    #: Margins of a cell's plotting area, as fractions of the cell: left, right, bottom, top.
    margins = (0.05, 0.05, 0.2, 0.24)

    def __init__(
        self,
        count: int,
        columns: int = 4,
        cell: tuple[float, float] = (2.7, 1.75),
        pad: tuple[float, float] = (0.0, 0.0),
    ) -> None:
        self.columns = max(1, min(columns, count))
        self.rows = max(1, math.ceil(count / self.columns))
        self.fig = new_figure(cell[0] * (self.columns + pad[0]), cell[1] * (self.rows + pad[1]))
        ax = self.fig.add_axes((0.0, 0.0, 1.0, 1.0))
        ax.set_axis_off()
        ax.set_xlim(-pad[0], self.columns)
        ax.set_ylim(-self.rows - pad[1], 0)
        self.ax = ax

    def area(self, n: int) -> tuple[float, float, float, float]:
        """Panel ``n``'s plotting area in data units: (x0, y0, width, height)."""
        row, col = divmod(n, self.columns)
        left, right, bottom, top = self.margins
        return col + left, -row - 1 + bottom, 1 - left - right, 1 - bottom - top

    def title(self, n: int, text: str) -> None:
        row, col = divmod(n, self.columns)
        self.ax.text(
            col + self.margins[0],
            -row - 0.05,
            short(text, 36),
            fontsize=8.5,
            va="top",
            ha="left",
            fontweight="bold",
        )

    def text(self, n: int, fx: float, fy: float, text: str, **kwargs: Any) -> None:
        """Text at a fraction (fx, fy) of panel ``n``'s plotting area."""
        x0, y0, w, h = self.area(n)
        options: dict[str, Any] = {"fontsize": 7, "color": "#444"}
        options.update(kwargs)
        self.ax.text(x0 + fx * w, y0 + fy * h, text, **options)

    def png(self) -> bytes:
        return png(self.fig)


def png(fig: Figure) -> bytes:
    """The figure as PNG bytes (no timestamp in the metadata, so equal figures are equal files)."""
    buf = io.BytesIO()
    with warnings.catch_warnings():
        # A font without a glyph (CJK names in DejaVu Sans) draws a box; that is all.
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        _save(fig, buf)
    return buf.getvalue()


def _save(fig: Figure, buf: io.BytesIO) -> None:
    # Fast zlib level: the PNGs are small, and encoding at the default level costs more.
    fig.savefig(buf, format="png", metadata={"Software": None}, pil_kwargs={"compress_level": 1})


def short(text: Any, width: int = 28) -> str:
    """``text`` cut to ``width`` characters with an ellipsis."""
    s = str(text)
    return s if len(s) <= width else s[: width - 1] + "…"


def label(ax: Axes, title: str, *, fontsize: float = 9) -> None:
    """A compact panel: a short title, small tick labels, few ticks."""
    ax.set_title(short(title, 34), fontsize=fontsize, loc="left")
    ax.tick_params(labelsize=7, length=2, pad=1.5)
    ax.locator_params(axis="y", nbins=3)
