"""PNG plots of a report, byte-stable across runs.

matplotlib is imported inside the functions, and figures are drawn on a bare Agg canvas (no
pyplot, no global backend switch), under fixed rc settings: bundled DejaVu Sans, fixed sizes and
dpi, no software/date metadata in the files.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

POOL_COLOR = "#9db9d8"
SUBSET_COLOR = "#1f5b99"
DPI = 100
MAX_BARS = 30

_RC = {
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "svg.hashsalt": "mmssr-report",
    "svg.fonttype": "path",
    "path.simplify": True,
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
}


def score_histograms_png(capabilities: Sequence[dict[str, Any]]) -> bytes:
    """Small multiples, one panel per capability: share of pool vs subset per score (0..5, missing).

    Args:
        capabilities: ``ReportData.capabilities`` entries (id, picked, labels, pool, subset).
    """
    n = len(capabilities)
    cols = min(4, max(n, 1))
    rows = max(math.ceil(n / cols), 1)

    def draw(fig: Any) -> None:
        axes = fig.subplots(rows, cols, squeeze=False, sharey=True)
        for slot, ax in enumerate(axes.flat):
            if slot >= n:
                ax.set_visible(False)
                continue
            cap = capabilities[slot]
            x = list(range(len(cap["labels"])))
            ax.bar([i - 0.2 for i in x], _shares(cap["pool"]), 0.4, color=POOL_COLOR, label="pool")
            ax.bar([i + 0.2 for i in x], _shares(cap["subset"]), 0.4, color=SUBSET_COLOR,
                   label="subset")
            ax.set_xticks(x, [label if label != "missing" else "miss" for label in cap["labels"]])
            ax.set_title(f"{cap['id']} ({cap['picked']} picked)")
            ax.grid(axis="y", color="#e5e5e5", linewidth=0.6)
            ax.set_axisbelow(True)
            if slot % cols == 0:
                ax.set_ylabel("% of samples")
        handles, labels = axes.flat[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside upper center", ncols=2, frameon=False)

    return render_png(draw, (3.0 * cols, 2.3 * rows + 0.5))


def bars_png(rows: Sequence[dict[str, Any]], title: str) -> bytes:
    """Horizontal bars of the first ``MAX_BARS`` rows: pool count with the subset count over it.

    Args:
        rows: ``{"label", "pool", "subset"}`` dicts, already in display order.
        title: the figure title.
    """
    shown = list(rows[:MAX_BARS])

    from matplotlib.ticker import MaxNLocator

    def draw(fig: Any) -> None:
        ax = fig.subplots()
        y = list(range(len(shown)))
        ax.barh(y, [r["pool"] for r in shown], 0.8, color=POOL_COLOR, label="pool")
        ax.barh(y, [r["subset"] for r in shown], 0.5, color=SUBSET_COLOR, label="subset")
        ax.set_yticks(y, [_short(r["label"]) for r in shown])
        ax.invert_yaxis()
        top = max((r["pool"] for r in shown), default=0)
        for i, r in enumerate(shown):
            ax.text(r["pool"] + top * 0.01, i, f"{r['subset']} / {r['pool']}", va="center",
                    fontsize=7, color="#333333")
        ax.set_xlim(0, max(top, 1) * 1.18)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("samples (subset / pool)")
        ax.set_title(title, loc="left")
        ax.grid(axis="x", color="#e5e5e5", linewidth=0.6)
        ax.set_axisbelow(True)
        ax.legend(loc="lower right", frameon=False)

    return render_png(draw, (9.0, 0.26 * max(len(shown), 1) + 1.3))


def style_source_heatmap_png(matrix: dict[str, Any]) -> bytes:
    """Style x source grid: colour = share of the bin's pool samples in the subset, text = subset
    count (empty cell: no pool sample in that bin).

    Args:
        matrix: ``ReportData.style_bins["matrix"]`` (styles, sources, pool, subset grids).
    """
    styles, sources = matrix["styles"], matrix["sources"]
    pool, subset = matrix["pool"], matrix["subset"]
    share = [[100.0 * s / p if p else math.nan for p, s in zip(prow, srow)]
             for prow, srow in zip(pool, subset)]

    def draw(fig: Any) -> None:
        from matplotlib import colormaps

        ax = fig.subplots()
        cmap = colormaps["Blues"].with_extremes(bad="#f2f2f2")
        image = ax.imshow(share, cmap=cmap, vmin=0, vmax=100, aspect="auto",
                          interpolation="nearest")
        ax.set_xticks(range(len(sources)), [_short(s, 28) for s in sources], rotation=60,
                      ha="right", rotation_mode="anchor")
        ax.set_yticks(range(len(styles)), styles)
        for r, row in enumerate(subset):
            for c, count in enumerate(row):
                if pool[r][c]:
                    dark = share[r][c] > 55
                    ax.text(c, r, str(count), ha="center", va="center", fontsize=7,
                            color="white" if dark else "#1d2430")
        ax.set_xticks([x - 0.5 for x in range(1, len(sources))], minor=True)
        ax.set_yticks([y - 0.5 for y in range(1, len(styles))], minor=True)
        ax.grid(which="minor", color="white", linewidth=1.0)
        ax.tick_params(which="minor", length=0)
        for side in ("top", "right", "left", "bottom"):
            ax.spines[side].set_visible(False)
        ax.set_title("style x source bins\nnumber: samples in the subset; colour: % of the bin",
                     loc="left")
        fig.colorbar(image, ax=ax, label="% of the bin in the subset", shrink=0.8, pad=0.01)

    width = min(max(0.34 * len(sources) + 3.8, 6.0), 12.5)
    return render_png(draw, (width, 0.34 * max(len(styles), 1) + 2.4))


def render_png(draw: Any, size: tuple[float, float]) -> bytes:
    """Draw on a fresh matplotlib figure of ``size`` inches and return it as byte-stable PNG."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=size, dpi=DPI, layout="constrained")
        FigureCanvasAgg(fig)
        draw(fig)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _shares(counts: Sequence[int]) -> list[float]:
    total = sum(counts)
    return [100.0 * c / total if total else 0.0 for c in counts]


def _short(label: str, width: int = 48) -> str:
    return label if len(label) <= width else label[: width - 3] + "..."
