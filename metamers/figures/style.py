"""Figure style and saving, shared by every figure module."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

sns.set_theme(context="paper", style="ticks", font_scale=1.1)


def save_figure(fig: plt.Figure, paths: Sequence[str | Path]) -> None:
    """Save ``fig`` to every path (the format follows the suffix), then close it."""
    for path in paths:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=200, bbox_inches="tight")
    plt.close(fig)
