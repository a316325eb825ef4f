"""The kit's one figure style: column width, 8 pt fonts, the Okabe–Ito colour-blind-safe
palette, vector PDF plus PNG.

:func:`style` is a context manager: it never changes the caller's global ``rcParams`` and
never picks a matplotlib backend (the CLI sets ``MPLBACKEND=Agg`` for itself; a notebook keeps
its inline backend).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

__all__ = [
    "PALETTE",
    "EXTENDED",
    "COLUMN_IN",
    "STYLE",
    "VERDICT_COLORS",
    "MARKERS",
    "LINESTYLES",
    "series_style",
    "style",
    "save_figure",
    "legend_below",
]

#: Okabe & Ito (2008) colour-blind-safe palette.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
#: Extra colours after the eight Okabe–Ito ones (Tol's wine, grey), for families of 9-10 variants.
EXTENDED = PALETTE + ["#882255", "#999999"]
COLUMN_IN = 3.4  # one column of a two-column paper, inches
#: Markers and line styles that tell series apart once the eight colours repeat (12+ variants).
MARKERS = ("o", "s", "^")
LINESTYLES = ("-", "--", ":")


def series_style(i: int) -> dict[str, Any]:
    """Colour, marker and line style of the ``i``-th series: the palette's colour, and a new
    marker and dash pattern each time the eight colours come round again.

    >>> series_style(0)["color"] == series_style(8)["color"], series_style(8)["marker"]
    (True, 's')
    """
    cycle = i // len(PALETTE)
    return {
        "color": PALETTE[i % len(PALETTE)],
        "marker": MARKERS[cycle % len(MARKERS)],
        "linestyle": LINESTYLES[cycle % len(LINESTYLES)],
    }


VERDICT_COLORS = {"select": PALETTE[0], "create": PALETTE[3], "inconclusive": "#999999"}
STYLE: dict[str, Any] = {
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "legend.fontsize": 6.5,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "axes.prop_cycle": matplotlib.rcsetup.cycler(color=PALETTE),
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.25,
    "grid.linewidth": 0.5,
    "lines.linewidth": 1.2,
    "lines.markersize": 3.5,
    "legend.frameon": False,
    "figure.dpi": 200,
    "savefig.dpi": 300,
    "savefig.bbox": "tight",
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
}


@contextmanager
def style() -> Iterator[None]:
    """The kit's figure style as a context; the caller's ``rcParams`` are restored on exit."""
    with plt.rc_context():
        params: Any = (
            plt.rcParams
        )  # matplotlib's stubs type its keys as literals; STYLE's are checked at runtime
        params.update(STYLE)
        yield


def save_figure(fig: Figure, out: str | Path) -> list[Path]:
    """Save ``fig`` as ``out.pdf`` (vector) and ``out.png``; close it; return both paths."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = [out.with_suffix(".pdf"), out.with_suffix(".png")]
    for p in paths:
        fig.savefig(p, bbox_extra_artists=list(fig.legends) or None, bbox_inches="tight")
    plt.close(fig)
    return paths


def legend_below(fig: Figure, ax: Any, ncol: int = 4) -> None:
    """One legend for the figure, centred under the axes, from ``ax``'s handles."""
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.02), ncol=ncol, columnspacing=0.8)


def layer_ticks(ax: Any, layers: Any, most: int = 8) -> None:
    """Integer layer ticks on the x axis: every layer when there are at most ``most``, else
    every k-th from the first (the last too when it is a full step away) so that a 30-layer model's labels never overprint."""
    ticks = sorted({int(x) for x in layers})
    if len(ticks) > most:
        step = -(-len(ticks) // most)
        every = ticks[::step]
        ticks = every + ([ticks[-1]] if ticks[-1] - every[-1] >= step else [])
    ax.set_xticks(ticks)
