"""Figures people look at: learning curves from metrics.csv."""

from __future__ import annotations

import csv
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def save_figure(fig, path: str, dpi: int = 90) -> str:
    """Write a matplotlib figure to ``path`` through a temporary file and a rename, then close it."""
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=dpi)
    plt.close(fig)
    os.replace(tmp, path)
    return path


def plot_metrics(csv_path: str, out_png: str, keys: list[str]) -> str | None:
    """One panel per metric in ``keys`` (those present), against step. Returns the PNG path,
    or None when there is nothing to plot: no metric of ``keys``, or no ``csv_path`` at all (a
    run that resumed at its last step, e.g. from a copied checkpoint, logged no step)."""
    if not os.path.exists(csv_path):
        return None
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    keys = [k for k in keys if any(r.get(k) not in (None, "") for r in rows)]
    if not rows or not keys:
        return None
    fig, axes = plt.subplots(1, len(keys), figsize=(3.6 * len(keys), 3.0), squeeze=False)
    for ax, key in zip(axes[0], keys):
        pts = [(float(r["step"]), float(r[key])) for r in rows if r.get(key) not in (None, "")]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="." if len(pts) < 30 else None)
        ax.set_title(key)
        ax.set_xlabel("step")
    fig.tight_layout()
    return save_figure(fig, out_png)
