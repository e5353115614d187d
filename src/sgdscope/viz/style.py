"""One look for every figure: sizes readable at report size, colours by learning rate or group,
Agg-only (``matplotlib.figure.Figure`` is used directly, never pyplot's global state)."""
from __future__ import annotations

from matplotlib.figure import Figure

__all__ = ["new_figure", "colors", "WIDTH", "HEIGHT"]

WIDTH, HEIGHT = 4.2, 3.2  # inches per panel: about 630 x 480 px at the report's 150 dpi


def new_figure(ncols: int = 1, nrows: int = 1, *, title: str | None = None, width: float = WIDTH, height: float = HEIGHT):
    """A Figure with an (nrows, ncols) grid of axes (``axes`` always a flat list), constrained layout."""
    fig = Figure(figsize=(width * ncols, height * nrows), dpi=150, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel().tolist()
    for ax in axes:
        ax.grid(True, alpha=0.3, linewidth=0.5)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig, axes


def colors(n: int, cmap: str = "viridis") -> list:
    """``n`` distinct colours along a colormap (ordered values: a larger learning rate is later)."""
    import matplotlib

    cm = matplotlib.colormaps[cmap]
    return [cm(0.1 + 0.8 * i / max(n - 1, 1)) for i in range(n)]
