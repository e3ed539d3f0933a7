"""Step time with and without the backbone's full input checks (`MnemoDynConfig.validate_input_values`).

The full checks scan every value for NaN/Inf and every mask entry for 0/1 and right padding; each is a reduction
plus a host-device sync. The model always checks shapes, ROI count, dtype and lengths. Both settings run
alternately in one process on the same batch (with right padding, so the mask checks run), same weights;
time = median of the repeats of a training step (forward + MSE + backward).

    python -m benchmarks.bench_input_validation                  # 4 layers, 450 ROIs, B=8, T=490
    python -m benchmarks.bench_input_validation --device cuda
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from mnemodyn_hf import MnemoDynConfig, MnemoDynModel

MODEL = dict(num_layers=4, projection_size=32, latent_channels=32, wavelet_levels=5, context_length=490)


def step_seconds(model: MnemoDynModel, values: torch.Tensor, mask: torch.Tensor, device: str) -> float:
    start = time.perf_counter()
    out = model(values, attention_mask=mask).last_hidden_state
    torch.nn.functional.mse_loss(out, values).backward()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def run(batch: int = 8, frames: int = 490, repeats: int = 10, device: str = "cpu") -> dict:
    torch.manual_seed(0)
    model = MnemoDynModel(MnemoDynConfig(**MODEL)).to(device).train()
    values = torch.randn(batch, frames, model.config.num_rois, device=device)
    mask = torch.ones(batch, frames, dtype=torch.long, device=device)
    mask[0, frames - frames // 5 :] = 0  # one padded run: the mask path is taken
    times: dict[bool, list[float]] = {False: [], True: []}
    for flag in (False, True):  # warm-up
        model.config.validate_input_values = flag
        step_seconds(model, values, mask, device)
    for _ in range(repeats):
        for flag in (False, True):
            model.config.validate_input_values = flag
            model.zero_grad(set_to_none=True)
            times[flag].append(step_seconds(model, values, mask, device))
    off, on = statistics.median(times[False]), statistics.median(times[True])
    return {
        "device": device,
        "batch": batch,
        "frames": frames,
        "repeats": repeats,
        "model": MODEL,
        "step_seconds_shape_checks": off,
        "step_seconds_full_checks": on,
        "ratio": on / off,
    }


def format_table(report: dict) -> str:
    return "\n".join(
        [
            "| checks | training step (s, median) | ratio |",
            "|---|---|---|",
            f"| shapes only (default) | {report['step_seconds_shape_checks']:.4f} | 1.00 |",
            f"| full (`validate_input_values=True`) | {report['step_seconds_full_checks']:.4f} "
            f"| {report['ratio']:.3f} |",
        ]
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--frames", type=int, default=490)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    report = run(args.batch, args.frames, args.repeats, args.device)
    print(f"{report['device']}, batch {report['batch']}, {report['frames']} frames, model {report['model']}")
    print(format_table(report))


if __name__ == "__main__":
    main()
