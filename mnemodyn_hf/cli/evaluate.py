"""`mnemodyn evaluate BACKBONE --task NAME -o DIR` (or `--cohort DIR --label COL --task-type T`)."""

from __future__ import annotations

import argparse

#: Names of the evaluation tasks (kept here so `mnemodyn --help` imports nothing heavy; a test keeps it equal to
#: the registry in `mnemodyn_hf.evaluation.tasks`).
TASK_NAMES = (
    "abide-age",
    "abide-reconstruction",
    "abide-dx",
    "abide-sex",
    "connattractor-heat",
    "hcp-aal2-reconstruction",
    "hcp-reconstruction",
    "rpn-age",
    "rpn-pain",
    "rpn-sex",
)
HELP = "score a backbone on a named task or a saved cohort beside FC, pooled-input and random baselines"
DESCRIPTION = (
    "Outer folds by subject or site; linear probe, frozen backbone + MLP head and full fine-tuning of the backbone "
    "beside Pearson and tangent FC, the pooled input and a random backbone on the same folds. With site groups, "
    "values per site, their mean and a cluster-bootstrap 95%% CI over sites, and sign-flip tests over sites "
    "(Holm-adjusted) of the primary read-out against the strongest baseline and the random backbone; without, the "
    "same over subjects. Writes report.json, predictions.csv and report.png. "
    "Tasks: " + ", ".join(TASK_NAMES) + "."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("backbone", help="a saved MnemoDyn folder (e.g. <pretraining run>/model)")
    parser.add_argument("--task", choices=TASK_NAMES, help="a named task (see docs/evaluation.md)")
    parser.add_argument("--data", help="the task's data folder (default: $MNEMODYN_SHARED_DATA/<cohort folder>)")
    parser.add_argument("--split", help="a split policy the task allows (default: its first)")
    parser.add_argument("--cohort", help="instead of --task: a Dataset.save_to_disk cohort folder")
    parser.add_argument("--label", help="with --cohort: the label column")
    parser.add_argument("--task-type", choices=("classification", "regression"), help="with --cohort")
    parser.add_argument("--groups", help="with --cohort: leave-one-group-out folds over this column (e.g. site)")
    parser.add_argument("--methods", nargs="+", help="a subset of the methods (default: all)")
    parser.add_argument("--head-epochs", type=int, default=40, help="MLP head epochs (early stopping)")
    parser.add_argument("--finetune-epochs", type=int, default=6, help="full fine-tuning epochs")
    parser.add_argument(
        "--regress-out",
        nargs="+",
        default=(),
        metavar="COLUMN",
        help="cohort columns (e.g. func_mean_fd) regressed out of every feature read-out within each training fold",
    )
    parser.add_argument(
        "--permutations",
        type=int,
        default=0,
        metavar="N",
        help="re-run each linear read-out's cross-validation under N label permutations (within sites when sites "
        "are held out) for a calibrated p-value against chance (p_vs_chance; slow: N times the read-out's cost)",
    )
    parser.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples for CIs and p-values")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--normalization",
        choices=("pretraining", "per-run-zscore"),
        default="pretraining",
        help="scale runs with the backbone's pretraining statistics (default; refused for a backbone without them) "
        "or z-score each run (an explicit choice for backbones without statistics, stated in the report)",
    )
    parser.add_argument("-o", "--output-dir", required=True, help="folder for report.json, predictions.csv, report.png")


def run(args: argparse.Namespace) -> None:
    from ..evaluation import DEFAULT_METHODS, EvaluationSettings, HeadSettings, evaluate_cohort, evaluate_task
    from ..evaluation.report import reconstruction_table, summary_table

    if (args.task is None) == (args.cohort is None):
        raise SystemExit("error: give either --task NAME or --cohort DIR --label COL --task-type TYPE.")
    heads = HeadSettings(head_epochs=args.head_epochs, finetune_epochs=args.finetune_epochs)
    methods = tuple(args.methods or DEFAULT_METHODS)
    settings = EvaluationSettings(
        methods=methods,
        num_bootstrap=args.bootstrap,
        seed=args.seed,
        heads=heads,
        normalization=args.normalization,
        regress_out=tuple(args.regress_out),
        label_permutations=args.permutations,
    )
    if args.task is not None:
        report = evaluate_task(
            args.task, args.backbone, args.output_dir, data=args.data, split=args.split, settings=settings
        )
    else:
        if args.label is None or args.task_type is None:
            raise SystemExit("error: --cohort needs --label COL and --task-type classification|regression.")
        report = evaluate_cohort(
            args.cohort,
            args.label,
            args.task_type,
            args.backbone,
            args.output_dir,
            groups=args.groups,
            settings=settings,
        )
    print(reconstruction_table(report) if "maskings" in report else summary_table(report))
    from pathlib import Path

    from ..plotting import PLOTS_EXTRA_HINT

    written = sorted(path.name for path in Path(args.output_dir).iterdir() if path.is_file())
    figure = "" if "report.png" in written else f" (no report.png: {PLOTS_EXTRA_HINT})"
    print(f"report: {args.output_dir}: {', '.join(written)}{figure}")
