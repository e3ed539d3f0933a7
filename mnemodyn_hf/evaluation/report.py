"""Writing an evaluation: `report.json`, per-unit predictions (`predictions.csv`) and a bar chart (`report.png`),
plus the one-screen summary the CLI prints."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import numpy as np

from ..atomic_files import write_file_atomically
from ..plotting import plots_available, pyplot

REPORT_FILE, PREDICTIONS_FILE, FIGURE_FILE = "report.json", "predictions.csv", "report.png"
_UNIT_NAMES = {"group": "sites", "subject": "subjects"}


def write_evaluation(report: dict, predictions: dict[str, np.ndarray], output_dir: str | os.PathLike) -> Path:
    """Write the three files into `output_dir` (atomically each); return the folder."""
    folder = Path(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    write_file_atomically(folder / REPORT_FILE, json.dumps(_jsonable(report), indent=2))
    write_file_atomically(folder / PREDICTIONS_FILE, _predictions_csv(predictions, report.get("classes")))
    if plots_available():
        _write_figure(report, folder / FIGURE_FILE)
    return folder


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _predictions_csv(predictions: dict[str, np.ndarray], classes) -> str:
    keys = [key for key in ("unit", "fold", "group", "label") if key in predictions]
    methods = [name for name in predictions if name not in keys]
    columns, data = list(keys), [predictions[key] for key in keys]
    for method in methods:
        values = np.asarray(predictions[method])
        if values.ndim == 2:
            for c in range(values.shape[1]):
                columns.append(f"{method}_p{classes[c] if classes else c}")
                data.append(values[:, c])
        else:
            columns.append(method)
            data.append(values)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for row in zip(*data):
        writer.writerow([f"{v:.6g}" if isinstance(v, (float, np.floating)) else v for v in row])
    return buffer.getvalue()


def _estimate(result: dict) -> float:
    """The number a method's `ci95` is an interval for (the mean over groups when the groups are the unit)."""
    return result.get("estimate", result["value"])


def _ci_unit(report: dict) -> str:
    return "sites" if report.get("inference", {}).get("unit") == "group" else "subjects"


def _write_figure(report: dict, path: Path) -> None:
    plt = pyplot()
    methods = list(report["methods"])
    values = [_estimate(report["methods"][m]) for m in methods]
    lows = [report["methods"][m]["ci95"][0] for m in methods]
    highs = [report["methods"][m]["ci95"][1] for m in methods]
    errors = np.array([[v - lo for v, lo in zip(values, lows)], [hi - v for v, hi in zip(values, highs)]])
    metric = report["methods"][methods[0]]["metric"]
    colours = [
        "tab:blue" if m.startswith("mnemodyn") else "tab:gray" if m.startswith("control") else "tab:orange"
        for m in methods
    ]
    figure, axis = plt.subplots(figsize=(1.1 * len(methods) + 2, 4))
    axis.bar(range(len(methods)), values, yerr=np.nan_to_num(errors), color=colours, capsize=4)
    chance = 0.5 if metric == "roc_auc" else 0.0
    axis.axhline(chance, color="black", linewidth=0.8, linestyle="--")
    axis.set_xticks(range(len(methods)), methods, rotation=35, ha="right")
    over_sites = _ci_unit(report) == "sites"
    axis.set_ylabel(f"{metric}{' mean over sites' if over_sites else ''} (95 % CI over {_ci_unit(report)})")
    axis.set_title(f"{report.get('task', report['label'])} ({report['split']}, {report['subjects']} subjects)")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120)
    plt.close(figure)
    write_file_atomically(path, buffer.getvalue())


def summary_table(report: dict) -> str:
    """Methods as rows (* the primary read-out): metric, pooled value, the estimate its 95 % CI is for (the mean over
    sites when sites are the unit), p vs the model's linear probe (unadjusted); then the Holm-adjusted comparisons."""
    over_sites = _ci_unit(report) == "sites"
    lines = [
        f"{report.get('task', report['label'])}: {report['split']}, {report['subjects']} subjects, "
        f"{len(report['folds'])} fold(s); one prediction per {report['unit']}; CIs and tests over {_ci_unit(report)}"
    ]
    if report.get("groups_lacking_a_class"):
        lines.append(f"sites lacking a class (left out of site means): {', '.join(report['groups_lacking_a_class'])}")
    if report.get("confounds_regressed"):
        lines.append(
            f"regressed out of the features within each training fold: {', '.join(report['confounds_regressed'])} "
            "(not from fine-tuning or the controls)"
        )
    estimate = "site mean" if over_sites else "value"
    lines.append(f"{'method':<32}{'metric':<11}{'pooled':>7}{estimate:>10}   {'95% CI':<16}{'p vs model':>10}")
    for method, result in sorted(report["methods"].items(), key=lambda item: -_sortable(_estimate(item[1]))):
        low, high = (_number(v) for v in result["ci95"])
        p = "" if result.get("p_vs_model") is None else f"{result['p_vs_model']:.3f}"
        name = ("* " if method == report.get("primary_method") else "  ") + method
        lines.append(
            f"{name:<32}{result['metric']:<11}{_number(result['value']):>7.3f}{_number(_estimate(result)):>10.3f}"
            f"   [{low:.3f}, {high:.3f}]  {p:>10}"
        )
    nulls = {m: r["permutation_null"] for m, r in report["methods"].items() if "permutation_null" in r}
    if nulls:
        lines.append(f"against chance ({next(iter(nulls.values()))['num']} label permutations, one-sided):")
        for method, null in nulls.items():
            low, high = null["null_ci95"]
            lines.append(f"  {method}: p {null['p_vs_chance']:.3f}, shuffled labels score [{low:.3f}, {high:.3f}]")
    if report.get("comparisons"):
        lines.append(f"comparisons (difference of {estimate}s, p Holm-adjusted over {len(report['comparisons'])}):")
        for c in report["comparisons"]:
            low, high = (_number(v) for v in c["ci95"])
            lines.append(
                f"  {c['a']} - {c['b']}: {_number(c['difference']):+.3f} [{low:+.3f}, {high:+.3f}], "
                f"p {_number(c['p']):.3f}, Holm {_number(c['p_holm']):.3f} ({c['num_units']} {_UNIT_NAMES[c['unit']]})"
            )
    return "\n".join(lines)


def _number(value) -> float:
    return float("nan") if value is None else float(value)


def _sortable(value) -> float:
    return -9.0 if value is None or not np.isfinite(value) else float(value)


def write_reconstruction(report: dict, output_dir: str | os.PathLike) -> Path:
    """`report.json` and `report.png` (R^2 per predictor, one group of bars per masking; with the plots extra) of a
    reconstruction run."""
    folder = Path(output_dir)
    write_file_atomically(folder / REPORT_FILE, json.dumps(_jsonable(report), indent=2))
    if not plots_available():
        return folder
    plt = pyplot()
    maskings = list(report["maskings"])
    names = list(report["maskings"][maskings[0]]["methods"])
    figure, axis = plt.subplots(figsize=(9, 4))
    width = 0.8 / len(names)
    for index, name in enumerate(names):
        results = [report["maskings"][m]["methods"][name] for m in maskings]
        values = [r["value"] for r in results]
        errors = np.array(
            [[v - r["ci95"][0] for v, r in zip(values, results)], [r["ci95"][1] - v for v, r in zip(values, results)]]
        )
        axis.bar(
            np.arange(len(maskings)) + (index - len(names) / 2 + 0.5) * width,
            values,
            width,
            yerr=errors,
            capsize=3,
            label=name,
            color="black" if name == "mnemodyn" else f"C{index}",
        )
    axis.axhline(0, color="black", linewidth=0.8)
    axis.set_xticks(range(len(maskings)), [f"{m} masks" for m in maskings])
    axis.set_ylabel("R^2 of hidden entries (95 % CI over subjects)")
    axis.set_title(f"Masked reconstruction, {len(report['held_out_subjects'])} held-out subjects")
    axis.legend(fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120)
    plt.close(figure)
    write_file_atomically(folder / FIGURE_FILE, buffer.getvalue())
    return folder


def reconstruction_table(report: dict) -> str:
    """Predictors as rows, one R^2 [CI] column per masking, the strongest baseline of each and `linear_ar`'s order
    and penalty."""
    maskings = list(report["maskings"])
    subjects = [str(subject) for subject in report["held_out_subjects"]]
    named = ", ".join(subjects[:4]) + (", ..." if len(subjects) > 4 else "")
    lines = [
        f"masked reconstruction: {report['windows']} windows of {report['window_frames']} frames, "
        f"{len(subjects)} held-out subjects ({named})"
    ]
    lines.append(f"{'predictor':<26}" + "".join(f"{m + ' R^2 [95% CI]':<30}" for m in maskings))
    for name in report["maskings"][maskings[0]]["methods"]:
        cells = []
        for m in maskings:
            r = report["maskings"][m]["methods"][name]
            cells.append(f"{r['value']:.3f} [{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}]".ljust(30))
        lines.append(f"{name:<26}" + "".join(cells))
    lines.append(
        "strongest baseline: " + ", ".join(f"{m}: {report['maskings'][m]['strongest_baseline']}" for m in maskings)
    )
    settings = {m: report["maskings"][m]["linear_ar"] for m in maskings if "linear_ar" in report["maskings"][m]}
    if settings:
        chosen = ", ".join(f"{m}: order {s['order']}, alpha {s['alpha']:g}" for m, s in settings.items())
        tuned_on = next(iter(settings.values()))["tuned_on"]
        source = f"chosen on validation subjects {', '.join(tuned_on)}" if tuned_on else "defaults, no validation runs"
        lines.append(f"linear_ar ({source}): {chosen}")
    return "\n".join(lines)


__all__ = [
    "FIGURE_FILE",
    "PREDICTIONS_FILE",
    "REPORT_FILE",
    "reconstruction_table",
    "summary_table",
    "write_evaluation",
    "write_reconstruction",
]
