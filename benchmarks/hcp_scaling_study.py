"""Data scaling at TR 0.72 s: pretrain the recommended recipe (`training.recipe`, only the split given) on 5, 9 and 13
of the 18 HCP subjects, with the same 2 validation and 3 test subjects for every size (`--max-train-subjects`: the
smaller sets are nested in the larger), and score masked reconstruction of the test subjects. The linear VAR anchor
(`linear_ar`) and the other fitted predictors learn from the same training subjects as the model and are tuned on
the same validation subjects (`evaluate_reconstruction`).

    python -m benchmarks.hcp_scaling_study --data ../shared/data/hcp_aal2 --work hcp_scaling \\
        --json benchmarks/results/hcp_scaling.json --plot docs/hcp_scaling.png
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from mnemodyn_hf.data import load_hcp_aal2
from mnemodyn_hf.evaluation.reconstruction import evaluate_reconstruction
from mnemodyn_hf.hub import read_pretraining_subjects
from mnemodyn_hf.plotting import pyplot

from .hcp_pretraining import pretrain_on_hcp

#: The split of the 18 subjects (seed 0: 13 train / 2 validation / 3 test), the same for every size.
SPLIT = {"validation_fraction": 0.12, "test_fraction": 0.17, "seed": 0}
SHOWN = ("mnemodyn", "linear_ar")


def run_size(runs, data: str, work: Path, subjects: int, bootstrap: int) -> dict:
    folder = work / f"n{subjects}"
    model, timing = folder / "model", work / f"n{subjects}-seconds.txt"
    if not (model / "model.safetensors").is_file():  # a size pretrained by an earlier call is scored again
        started = time.perf_counter()
        model = pretrain_on_hcp(data, folder, max_train_subjects=subjects, report_to="csv", **SPLIT)
        timing.write_text(f"{time.perf_counter() - started:.1f}")
    report = evaluate_reconstruction(model, runs, num_bootstrap=bootstrap)
    split = read_pretraining_subjects(model)
    result = {"train_subjects": split["train"], "pretraining_seconds": float(timing.read_text()), "maskings": {}}
    for masking, scores in report["maskings"].items():
        methods = scores["methods"]
        strongest = scores["strongest_baseline"]
        versus = next(c for c in scores["comparisons"] if c["b"] == "linear_ar")
        result["maskings"][masking] = {
            name: {"value": methods[name]["value"], "ci95": methods[name]["ci95"]} for name in {*SHOWN, strongest}
        } | {
            "strongest_baseline": strongest,
            "mnemodyn_minus_linear_ar": {k: versus[k] for k in ("difference", "ci95", "p")},
            "linear_ar_choice": {k: scores["linear_ar"][k] for k in ("order", "alpha")},
        }
    result["held_out_subjects"], result["validation_subjects"] = report["held_out_subjects"], split["validation"]
    return result


def plot(results: dict[int, dict], path: Path) -> None:
    plt = pyplot()
    sizes = sorted(results)
    maskings = list(results[sizes[0]]["maskings"])
    figure, axes = plt.subplots(1, len(maskings), figsize=(4 * len(maskings), 3.6), sharey=True)
    for axis, masking in zip(axes, maskings, strict=True):
        for name, style in zip(SHOWN, ("o-", "s--"), strict=True):
            cells = [results[n]["maskings"][masking][name] for n in sizes]
            values = [c["value"] for c in cells]
            errors = [[v - c["ci95"][0] for v, c in zip(values, cells)]]
            errors.append([c["ci95"][1] - v for v, c in zip(values, cells)])
            axis.errorbar(sizes, values, yerr=errors, fmt=style, capsize=3, label=name)
        axis.axhline(0, color="black", linewidth=0.6)
        axis.set(title=f"{masking} masks", xlabel="training subjects", xticks=sizes)
    axes[0].set_ylabel("R^2 of hidden entries, 3 test subjects (95 % CI)")
    axes[0].legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="the hcp_aal2 folder")
    parser.add_argument("--work", type=Path, default=Path("hcp_scaling"))
    parser.add_argument("--sizes", nargs="+", type=int, default=[5, 9, 13])
    parser.add_argument("--bootstrap", type=int, default=2000)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    runs = load_hcp_aal2(args.data)
    results = {}
    for size in args.sizes:
        results[size] = run_size(runs, args.data, args.work, size, args.bootstrap)
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({"split": SPLIT, "results": results}, indent=1))
    if args.plot:
        plot(results, args.plot)
    print("| training subjects | masking | MnemoDyn [95 % CI] | linear_ar [95 % CI] | MnemoDyn - linear_ar [95 % CI] |")
    print("|---|---|---|---|---|")
    for size, result in results.items():
        for masking, cell in result["maskings"].items():
            m, a, d = cell["mnemodyn"], cell["linear_ar"], cell["mnemodyn_minus_linear_ar"]
            print(f"| {size} | {masking} | {m['value']:.3f} [{m['ci95'][0]:.3f}, {m['ci95'][1]:.3f}] | "
                  f"{a['value']:.3f} [{a['ci95'][0]:.3f}, {a['ci95'][1]:.3f}] | "
                  f"{d['difference']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}] |")  # fmt: skip


if __name__ == "__main__":
    main()
