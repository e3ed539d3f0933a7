"""`mnemodyn pretrain --output-dir D [options]`: pretraining with Accelerate, then (optionally) the Hub upload."""

from __future__ import annotations

import argparse

HELP = "pretrain MnemoDyn with Accelerate (masked, denoising or JEPA-style); `mnemodyn pretrain --help`"
DESCRIPTION = (
    "Pretrain MnemoDyn with Accelerate (masked, denoising or JEPA-style objectives). The same options run under "
    "`accelerate launch -m mnemodyn_hf.training` for DDP/FSDP and multi-node; see docs/pretraining.md."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..training.arguments import add_arguments as add_pretraining_arguments

    add_pretraining_arguments(parser)
    parser.add_argument("--push-to-hub", metavar="REPO_ID", help="upload the final model/ folder to this repo")
    parser.add_argument("--hub-private", action="store_true", help="create the Hub repo as private")


def run(args: argparse.Namespace) -> None:
    from accelerate import PartialState

    from ..training import arguments_from_namespace, pretrain

    folder = pretrain(arguments_from_namespace(args))
    if not PartialState().is_main_process:  # under `accelerate launch`, one process reports and uploads
        return
    print(f"model: {folder} (weights, config, fitted feature extractor, metrics, model card)")
    if args.push_to_hub:
        from ..hub import push_folder

        message = "Upload MnemoDyn pretrained with mnemodyn pretrain"
        url = push_folder(folder, args.push_to_hub, private=args.hub_private, commit_message=message)
        print(f"uploaded {folder} to {args.push_to_hub}: {url}")
