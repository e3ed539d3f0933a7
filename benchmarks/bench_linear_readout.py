"""The linear read-outs before and after the penalty search was rewritten: time and agreement on real ABIDE data.

`fit_predict_before` is the implementation `linear_models.fit_predict` replaced, kept here verbatim as the
reference: GridSearchCV over the penalty grid with scikit-learn's LogisticRegression / Ridge. The current
`fit_predict` must choose the same penalty on every fold and predict the same scores (docs/benchmarks.md, "Linear
read-outs"). On the 426 abide_dev subjects, leave-site-out (10 folds), for three feature sets:

| method | features (R = 200 CC200 ROIs) |
|---|---|
| `fc_pearson` | Fisher-z Pearson FC, R (R - 1) / 2 (`connectivity.pearson_connectivity`) |
| `fc_tangent` | tangent-space FC at the training runs' mean, fitted per fold (`connectivity.TangentConnectivity`) |
| `pooled_input` | per-ROI mean and standard deviation of the raw runs, 2 R (the harness feeds the normalised runs) |

each fold is fitted three times in a row, under the same load: `before` (as it ran, BLAS threads as configured),
`before_1_thread` (the same under one BLAS thread: what the thread limit alone gives) and `after`. The inner CV is
grouped by subject (the harness until now) and by site (the harness for site splits now). Only the read-out is
timed: the features are computed once per fold beforehand.

Agreement is checked against both `before` runs. With equal BLAS threads the two implementations give the same
penalty and predictions to rounding. Against `before` on two threads they can differ where a large C is chosen
(sex from FC): the early-stopped fits there amplify rounding, and the old code itself moves by up to 0.14 in
probability between one and two threads.

    python -m benchmarks.bench_linear_readout --data ../shared/data/abide_dev \\
        --json benchmarks/results/linear_readout.json --docs docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from benchmarks import machine
from benchmarks.machine import machine_line
from mnemodyn_hf.evaluation import linear_models
from mnemodyn_hf.evaluation.connectivity import TangentConnectivity, pearson_connectivity
from mnemodyn_hf.evaluation.embeddings import pooled_input
from mnemodyn_hf.evaluation.folds import make_folds
from mnemodyn_hf.evaluation.linear_models import LOGISTIC_C_GRID, RIDGE_ALPHA_GRID, row_space_coordinates

METHODS = ("fc_pearson", "fc_tangent", "pooled_input")
IMPLEMENTATIONS = ("before", "before_1_thread", "after")
#: ABIDE labels: dx and sex (classification, ROC-AUC), age (regression, ridge, Pearson r).
LABELS = {"dx": "classification", "sex": "classification", "age": "regression"}
GROUPINGS = ("site", "subject")
SECTION = "Linear read-outs"


def fit_predict_before(x_train, y_train, groups_train, x_test, task, seed=0, return_penalty=False):
    """`linear_models.fit_predict` before the rewrite (GridSearchCV), verbatim but for `return_penalty`, which
    also returns the chosen C or alpha."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.model_selection import GridSearchCV, GroupKFold, StratifiedGroupKFold
    from sklearn.preprocessing import StandardScaler

    x_train, x_test = np.asarray(x_train, np.float64), np.asarray(x_test, np.float64)
    scaler = StandardScaler().fit(x_train)
    x_train, x_test = scaler.transform(x_train), scaler.transform(x_test)
    if x_train.shape[1] > x_train.shape[0]:  # rotate onto the training rows' span (see the module docstring)
        x_train, x_test = row_space_coordinates(x_train, x_test)
    groups = np.asarray(groups_train)
    folds = min(linear_models.INNER_FOLDS, len(np.unique(groups)))
    if task == "classification":
        y = np.asarray(y_train).astype(int)
        # every inner validation fold must see each class: no more folds than the rarest class has subjects
        smallest = min(len(np.unique(groups[y == c])) for c in np.unique(y))
        folds = max(2, min(folds, smallest))
        estimator = LogisticRegression(class_weight="balanced", max_iter=5000)
        search = GridSearchCV(
            estimator,
            {"C": LOGISTIC_C_GRID},
            scoring="roc_auc" if len(np.unique(y)) == 2 else "roc_auc_ovr",
            cv=StratifiedGroupKFold(folds, shuffle=True, random_state=seed),
        )
    else:
        y = np.asarray(y_train, np.float64)
        search = GridSearchCV(
            Ridge(), {"alpha": RIDGE_ALPHA_GRID}, scoring="neg_mean_squared_error", cv=GroupKFold(max(2, folds))
        )
    with warnings.catch_warnings():  # a penalty at the edge of the grid may not converge; the grid still ranks it
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(x_train, y, groups=groups)
    best = search.best_estimator_
    scores = best.predict_proba(x_test) if task == "classification" else best.predict(x_test)
    if return_penalty:
        return scores, float(next(iter(search.best_params_.values())))
    return scores


def load_cohort(data: Path, sites: Sequence[str] | None = None) -> dict:
    """Runs, subjects, sites and labels of abide_dev (or of some of its sites)."""
    from mnemodyn_hf.data import load_abide_pcp

    cohort = load_abide_pcp(data, sites=sites).with_format("numpy")
    sex = np.asarray(cohort["sex"]).astype(str)
    return {
        "bold": list(cohort["bold"]),  # float32 runs, as the harness reads them
        "subject": np.asarray(cohort["subject"]).astype(str),
        "site": np.asarray(cohort["site"]).astype(str),
        "labels": {
            "dx": np.asarray(cohort["dx"]).astype(int),
            "sex": (sex == "F").astype(int),
            "age": np.asarray(cohort["age"], np.float64),
        },
    }


def _fold_metric(task: str, y: np.ndarray, scores: np.ndarray) -> float:
    """ROC-AUC of class 1 (classification) or Pearson r (regression) on one test fold; NaN when undefined."""
    from sklearn.metrics import roc_auc_score

    if task == "classification":
        return float(roc_auc_score(y, scores[:, 1])) if len(np.unique(y)) == 2 else float("nan")
    return float(np.corrcoef(y, scores)[0, 1])


def _timed(implementation: str, x_train, y_train, groups, x_test, task):
    from threadpoolctl import threadpool_limits

    began = time.perf_counter()
    if implementation == "after":
        scores = linear_models.fit_predict(x_train, y_train, groups, x_test, task)
        seconds = time.perf_counter() - began  # the penalty is looked up outside the timing
        penalty = linear_models.select_penalty(x_train, y_train, groups, task).penalty
        return scores, penalty, seconds
    if implementation == "before_1_thread":
        with threadpool_limits(limits=1, user_api="blas"):
            scores, penalty = fit_predict_before(x_train, y_train, groups, x_test, task, return_penalty=True)
    else:
        scores, penalty = fit_predict_before(x_train, y_train, groups, x_test, task, return_penalty=True)
    return scores, penalty, time.perf_counter() - began


def run(
    data: Path,
    *,
    sites: Sequence[str] | None = None,
    labels: Sequence[str] = tuple(LABELS),
    groupings: Sequence[str] = GROUPINGS,
    methods: Sequence[str] = METHODS,
    implementations: Sequence[str] = IMPLEMENTATIONS,
) -> dict:
    """Fit every (label, grouping, method, fold) with each implementation; see the module docstring."""
    began = time.perf_counter()
    cohort = load_cohort(data, sites)
    features = {"fc_pearson": pearson_connectivity(cohort["bold"]), "pooled_input": pooled_input(cohort["bold"])}
    folds = make_folds("leave-site-out", cohort["subject"], cohort["site"])
    feature_seconds = time.perf_counter() - began
    rows = []
    for fold in folds:
        for method in methods:
            if method == "fc_tangent":
                tick = time.perf_counter()
                tangent = TangentConnectivity()
                x_train = tangent.fit_transform([cohort["bold"][i] for i in fold.train])
                x_test = tangent.transform([cohort["bold"][i] for i in fold.test])
                feature_seconds += time.perf_counter() - tick
            else:
                x_train, x_test = features[method][fold.train], features[method][fold.test]
            for label in labels:
                task, y = LABELS[label], cohort["labels"][label]
                for grouping in groupings:
                    groups = cohort[grouping][fold.train]
                    row = {"label": label, "grouping": grouping, "method": method, "fold": fold.name}
                    outputs = {}
                    for implementation in implementations:
                        scores, penalty, seconds = _timed(implementation, x_train, y[fold.train], groups, x_test, task)
                        outputs[implementation] = scores
                        row[implementation] = {
                            "seconds": seconds,
                            "penalty": penalty,
                            "metric": _fold_metric(task, y[fold.test], scores),
                        }
                    for reference in ("before", "before_1_thread"):
                        if reference in outputs and "after" in outputs:
                            before, after = row[reference], row["after"]
                            before["same_penalty"] = before["penalty"] == after["penalty"]
                            before["max_abs_score_diff"] = float(np.abs(outputs[reference] - outputs["after"]).max())
                            before["abs_metric_diff"] = abs(before["metric"] - after["metric"])
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine_description(),
        "subjects": len(cohort["subject"]),
        "folds": [fold.name for fold in folds],
        "feature_seconds": feature_seconds,
        "rows": rows,
        "summary": summarise(rows, implementations),
    }


def summarise(rows: list[dict], implementations: Sequence[str] = IMPLEMENTATIONS) -> list[dict]:
    """Per (label, grouping, method): seconds of each implementation over the folds, the speed-up of `after`, and
    the agreement (same penalty on every fold, largest score and fold-metric differences)."""
    summary = []
    keys = dict.fromkeys((r["label"], r["grouping"], r["method"]) for r in rows)
    for label, grouping, method in keys:
        group = [r for r in rows if (r["label"], r["grouping"], r["method"]) == (label, grouping, method)]
        entry = {"label": label, "grouping": grouping, "method": method, "folds": len(group)}
        for implementation in implementations:
            entry[f"{implementation}_seconds"] = sum(r[implementation]["seconds"] for r in group)
        entry["penalties"] = [r["after"]["penalty"] for r in group]
        for reference in ("before", "before_1_thread"):
            if reference in implementations:
                entry[f"speedup_vs_{reference}"] = entry[f"{reference}_seconds"] / entry["after_seconds"]
                entry[f"same_penalty_folds_vs_{reference}"] = sum(r[reference]["same_penalty"] for r in group)
                entry[f"max_abs_score_diff_vs_{reference}"] = max(r[reference]["max_abs_score_diff"] for r in group)
                differences = [r[reference]["abs_metric_diff"] for r in group]
                finite = [d for d in differences if np.isfinite(d)]
                entry[f"max_abs_metric_diff_vs_{reference}"] = max(finite) if finite else float("nan")
        summary.append(entry)
    return summary


def machine_description() -> str:
    """The machine line of benchmarks/machine.py, with BLAS threads and the library versions the readouts use."""
    import scipy
    import sklearn
    from threadpoolctl import threadpool_info

    blas = dict.fromkeys(
        f"{p['internal_api']} {p['num_threads']} threads" for p in threadpool_info() if p["user_api"] == "blas"
    )
    return (
        f"{machine_line(machine.machine_description())}, BLAS {', '.join(blas)}, numpy {np.__version__}, "
        f"scipy {scipy.__version__}, scikit-learn {sklearn.__version__}"
    )


def format_table(report: dict) -> str:
    """Markdown: seconds per (label, grouping, method) and implementation, speed-up and agreement of `after` with
    `before` / `before_1_thread`; then totals."""
    summary = report["summary"]
    timed = [i for i in IMPLEMENTATIONS if f"{i}_seconds" in summary[0]]
    references = [i for i in ("before", "before_1_thread") if i in timed]

    def pair(entry, key, fmt):
        return " / ".join(format(entry[f"{key}_vs_{reference}"], fmt) for reference in references)

    lines = [
        "| label | inner groups | method | "
        + " | ".join(f"{i.replace('_', ' ')} (s)" for i in timed)
        + " | speed-up | same penalty | max abs diff, scores | max abs diff, fold metric | chosen penalty per fold |",
        "|---|---|---|" + "---:|" * len(timed) + "---:|---:|---:|---:|---|",
    ]
    for e in summary:
        lines.append(
            f"| {e['label']} | {e['grouping']} | {e['method']} | "
            + " | ".join(f"{e[f'{i}_seconds']:.1f}" for i in timed)
            + f" | {pair(e, 'speedup', '.1f')} | "
            + " / ".join(f"{e[f'same_penalty_folds_vs_{r}']}/{e['folds']}" for r in references)
            + f" | {pair(e, 'max_abs_score_diff', '.0e')} | {pair(e, 'max_abs_metric_diff', '.0e')} | "
            + ", ".join(f"{p:g}" for p in e["penalties"])
            + " |"
        )
    lines += ["", "| methods | " + " | ".join(f"{i.replace('_', ' ')} (s)" for i in timed) + " | speed-up |"]
    lines.append("|---|" + "---:|" * (len(timed) + 1))
    for name, chosen in (("fc_pearson + fc_tangent", ("fc_pearson", "fc_tangent")), ("all three", METHODS)):
        for label in dict.fromkeys(e["label"] for e in summary):
            for grouping in dict.fromkeys(e["grouping"] for e in summary):
                picked = [
                    e for e in summary if e["method"] in chosen and (e["label"], e["grouping"]) == (label, grouping)
                ]
                if not picked:
                    continue
                totals = {i: sum(e[f"{i}_seconds"] for e in picked) for i in timed}
                ratios = " / ".join(f"{totals[r] / totals['after']:.1f}" for r in references)
                lines.append(
                    f"| {name}: {label}, {grouping} groups | "
                    + " | ".join(f"{totals[i]:.1f}" for i in timed)
                    + f" | {ratios} |"
                )
    return "\n".join(lines)


def render_section(report: dict) -> str:
    """The "Linear read-outs" section of docs/benchmarks.md."""
    return "\n".join(
        [
            f"## {SECTION}",
            "",
            "`linear_models.fit_predict` (the read-out of every FC, pooled-input and embedding method) before and "
            "after its penalty search was rewritten: the same inner splits, the same early-stopped L-BFGS fits "
            "(a numpy loss instead of `LogisticRegression.fit` under `GridSearchCV`), ridge in closed form for the "
            "whole alpha grid, one BLAS thread for these small matrices. abide_dev, "
            f"{report['subjects']} subjects, leave-site-out ({len(report['folds'])} folds), inner CV grouped by "
            "site or by subject; only the read-out is timed (benchmarks/bench_linear_readout.py, where `before`, "
            "the GridSearchCV code, is kept). Each fold is fitted by `before` (BLAS threads as configured), "
            "`before 1 thread` (the same code on one BLAS thread) and `after`, in a row. Pairs a / b compare "
            "`after` with `before` / `before 1 thread`; fold metric: test ROC-AUC (dx, sex), Pearson r (age).",
            "",
            f"Measured {report['date']} on {report['machine']}.",
            f"Command: `{report['command']}`",
            "",
            format_table(report),
            "",
            *_findings(report),
        ]
    )


def _findings(report: dict) -> list[str]:
    """One generated paragraph: the FC totals and the largest disagreements over every fold fit."""
    rows, summary = report["rows"], report["summary"]
    references = [r for r in ("before", "before_1_thread") if r in rows[0]]
    fc = [e for e in summary if e["method"] in ("fc_pearson", "fc_tangent")]
    timed = [i for i in IMPLEMENTATIONS if i in rows[0]]
    lines = []
    if fc:
        totals = ", ".join(f"{i.replace('_', ' ')} {sum(e[f'{i}_seconds'] for e in fc):.0f} s" for i in timed)
        lines.append(
            f"FC methods (fc_pearson + fc_tangent, {sum(e['folds'] for e in fc)} fold fits over every label and "
            f"grouping): {totals}."
        )
    for reference in references:
        same = sum(r[reference]["same_penalty"] for r in rows)
        scores = max(r[reference]["max_abs_score_diff"] for r in rows)
        metrics = [r[reference]["abs_metric_diff"] for r in rows if np.isfinite(r[reference]["abs_metric_diff"])]
        lines.append(
            f"Against {reference.replace('_', ' ')}: the same penalty on {same}/{len(rows)} fold fits, scores within "
            f"{scores:.1e}, fold metrics within {max(metrics):.1e}."
        )
    return [" ".join(lines), ""] if lines else []


def write_section(page: Path, section: str) -> None:
    """Replace the `## Linear read-outs` section of `page` (or append it)."""
    text = page.read_text() if page.exists() else "# Benchmarks\n"
    parts = text.split("\n## ")
    kept = [parts[0].rstrip() + "\n"] + [
        "## " + part.rstrip() + "\n" for part in parts[1:] if part.splitlines()[0].strip() != SECTION
    ]
    page.write_text("\n".join([*kept, section.rstrip() + "\n"]))


def main(argv: list[str] | None = None) -> None:
    import shlex
    import sys

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="abide_dev folder (default: $MNEMODYN_SHARED_DATA/abide_dev)")
    parser.add_argument("--sites", nargs="+", help="only these sites (default: all)")
    parser.add_argument("--labels", nargs="+", choices=sorted(LABELS), default=list(LABELS))
    parser.add_argument("--groupings", nargs="+", choices=GROUPINGS, default=list(GROUPINGS))
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--json", type=Path, help="write the report here")
    parser.add_argument("--docs", type=Path, help="write the section into this benchmarks page")
    args = parser.parse_args(argv)
    data = args.data
    if data is None:
        if "MNEMODYN_SHARED_DATA" not in os.environ:
            parser.error("give --data or set MNEMODYN_SHARED_DATA")
        data = Path(os.environ["MNEMODYN_SHARED_DATA"]) / "abide_dev"
    report = run(data, sites=args.sites, labels=args.labels, groupings=args.groupings, methods=args.methods)
    arguments = argv if argv is not None else sys.argv[1:]
    report["command"] = "python -m benchmarks.bench_linear_readout " + " ".join(map(shlex.quote, arguments))
    print(format_table(report))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1))
    if args.docs:
        write_section(args.docs, render_section(report))


if __name__ == "__main__":
    main()
