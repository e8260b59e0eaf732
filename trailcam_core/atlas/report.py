"""The picture of an atlas's likely-copies report: each generated source's nearest-real distances
against the real photos' own nearest-neighbour distances.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from trailcam_core.base import atomic_path




def report_figure(real_nn: np.ndarray, nearest: dict[str, np.ndarray], stats: dict, dest: Path) -> Path:
    """Histograms: each generated source's nearest-real distances over the real photos' own NN distances."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.8), dpi=100)
    allv = np.concatenate([real_nn] + [v for v in nearest.values() if len(v)]) if len(real_nn) else np.zeros(1)
    bins = np.linspace(0, float(np.percentile(allv, 99.5)) * 1.05 + 1e-9, 60)
    ax.hist(real_nn, bins=bins, density=True, alpha=0.45, color="#777", label="real photo -> nearest other real photo")
    colours = ["#e6194b", "#4363d8", "#3cb44b", "#f58231", "#911eb4"]
    for k, (name, v) in enumerate(nearest.items()):
        if len(v):
            ax.hist(v, bins=bins, density=True, histtype="step", linewidth=2, color=colours[k % 5],
                    label=f"{name} -> nearest real ({stats[name]['flagged']} likely copies)")
    thr = next(iter(stats.values()))["threshold"]
    ax.axvline(thr, color="k", linestyle="--", linewidth=1, label="real-real 1st percentile: copy threshold"
               if next(iter(stats.values()))["threshold_percentile"] == 1.0 else "copy threshold")
    ax.set_xlabel("feature distance")
    ax.set_ylabel("density")
    ax.set_title("Where the generations sit: distance to the nearest real photo")
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(dest) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return dest
