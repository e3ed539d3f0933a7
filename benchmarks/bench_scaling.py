"""How MnemoDyn's inference time and memory grow with the number of frames, against the attention baseline.

MnemoDyn: forward at batch 1 for T = 256 ... 65,536 frames (13 hours at TR 0.72 s), each in a fresh process,
with log-log slopes fitted from 4,096 frames up. Attention baseline (BrainLM-sized ViT-MAE, 450 x T/20 tokens):
the full 12-layer encoder at T = 490; at longer T the first layer alone is timed at a few lengths and a
quadratic-in-tokens fit is extrapolated to 12 layers (marked as such), because a single 4,096-frame
sequence (92,250 tokens) would take tens of minutes on a laptop CPU.

    python -m benchmarks.bench_scaling
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from benchmarks.attention_baseline import AttentionBaseline
from benchmarks.bench_backbone import machine_description, run_worker

FRAMES = (256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536)
SLOPE_FROM = 4096
ATTENTION_FULL_FRAMES = 490
ATTENTION_PROBE_FRAMES = (490, 980, 1960)
ATTENTION_LAYERS = 12


def loglog_slope(x, y) -> float:
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def run(
    size: str = "released",
    frames=FRAMES,
    probe_frames=ATTENTION_PROBE_FRAMES,
    full_attention_frames: int = ATTENTION_FULL_FRAMES,
    compare_frames=(490, 4096),
    repeats: int = 1,
) -> dict:
    ours = [run_worker("mnemodyn", "forward", size, 1, t, repeats) for t in frames]
    tail = [r for r in ours if r["frames"] >= min(SLOPE_FROM, max(frames))]
    slopes = {}
    if len(tail) >= 2:
        slopes = {
            "time": loglog_slope([r["frames"] for r in tail], [r["seconds"] for r in tail]),
            "memory": loglog_slope([r["frames"] for r in tail], [max(r["peak_memory_bytes"], 1) for r in tail]),
            "from_frames": tail[0]["frames"],
        }
    full = run_worker("attention_baseline", "forward", size, 1, full_attention_frames, repeats)
    probes = [run_worker("attention_baseline", "forward", size, 1, t, repeats, layers=1) for t in probe_frames]
    from benchmarks.bench_backbone import SIZES

    rois = SIZES[size]["num_rois"]
    tokens = np.array([AttentionBaseline.num_tokens(r["frames"], rois) for r in probes], dtype=float)
    # one layer costs a*N^2 + b*N (attention + projections/MLP); least squares on the probes
    design = np.stack([tokens**2, tokens], axis=1)
    coefficients, *_ = np.linalg.lstsq(design, np.array([r["seconds"] for r in probes]), rcond=None)

    def attention_seconds(t: int) -> tuple[float, str]:
        if t == full_attention_frames:
            return full["seconds"], "measured"
        n = AttentionBaseline.num_tokens(t, rois)
        return float(ATTENTION_LAYERS * (coefficients[0] * n**2 + coefficients[1] * n)), "extrapolated"

    ours_at = {r["frames"]: r for r in ours}
    comparison = []
    for t in compare_frames:
        mine = ours_at.get(t) or run_worker("mnemodyn", "forward", size, 1, t, repeats)
        seconds, how = attention_seconds(t)
        comparison.append(
            {
                "frames": t,
                "tokens": AttentionBaseline.num_tokens(t, rois),
                "mnemodyn_seconds": mine["seconds"],
                "attention_seconds": seconds,
                "attention_how": how,
                "throughput_ratio": seconds / mine["seconds"],
                "mnemodyn_peak_memory_bytes": mine["peak_memory_bytes"],
            }
        )
    return {
        "benchmark": "scaling",
        "size": size,
        "mnemodyn": ours,
        "slopes": slopes,
        "attention_full": full,
        "attention_one_layer_probes": probes,
        "attention_fit_seconds_per_layer": {"per_token_squared": coefficients[0], "per_token": coefficients[1]},
        "comparison": comparison,
        "machine": machine_description(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def format_table(report: dict) -> str:
    lines = ["| frames | s / sequence | peak memory (MiB) |", "|---|---|---|"]
    for r in report["mnemodyn"]:
        lines.append(f"| {r['frames']:,} | {r['seconds']:.3f} | {r['peak_memory_bytes'] / 2**20:.0f} |")
    if report["slopes"]:
        s = report["slopes"]
        lines.append(
            f"\nLog-log slope from {s['from_frames']:,} frames: time {s['time']:.2f}, memory {s['memory']:.2f}."
        )
    lines += [
        "",
        "| frames | tokens (attention) | MnemoDyn s | attention s | how | MnemoDyn throughput / attention |",
        "|---|---|---|---|---|---|",
    ]
    for c in report["comparison"]:
        lines.append(
            f"| {c['frames']:,} | {c['tokens']:,} | {c['mnemodyn_seconds']:.3f} | {c['attention_seconds']:.1f} | "
            f"{c['attention_how']} | {c['throughput_ratio']:.1f}x |"
        )
    return "\n".join(lines)


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frames = [r["frames"] for r in report["mnemodyn"]]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.loglog(frames, [r["seconds"] for r in report["mnemodyn"]], "o-", label="MnemoDyn (measured)")
    measured = [c for c in report["comparison"] if c["attention_how"] == "measured"]
    extrapolated = [c for c in report["comparison"] if c["attention_how"] == "extrapolated"]
    left.loglog(
        [c["frames"] for c in measured],
        [c["attention_seconds"] for c in measured],
        "s",
        color="C3",
        label="ViT-MAE 12L (measured)",
    )
    left.loglog(
        [c["frames"] for c in extrapolated],
        [c["attention_seconds"] for c in extrapolated],
        "s",
        color="C3",
        mfc="none",
        label="ViT-MAE 12L (extrapolated)",
    )
    left.set(xlabel="frames", ylabel="seconds / sequence (batch 1)", title="inference time")
    left.legend()
    right.loglog(frames, [max(r["peak_memory_bytes"], 1) / 2**20 for r in report["mnemodyn"]], "o-")
    right.set(xlabel="frames", ylabel="peak memory above weights (MiB)", title="MnemoDyn inference memory")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="released")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    report = run(args.size)
    print(format_table(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=float))


if __name__ == "__main__":
    main()
