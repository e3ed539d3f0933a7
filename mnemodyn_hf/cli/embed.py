"""`mnemodyn embed MODEL FILES -o OUT.npz`: fMRI files -> pooled MnemoDyn embeddings."""

from __future__ import annotations

import argparse

HELP = "fMRI files -> pooled MnemoDyn embeddings (.npz), through the model's feature extractor"
DESCRIPTION = (
    "Parcellates, resamples and robust-scales each file with the model folder's feature extractor, runs the "
    "backbone in eval mode and saves one pooled vector per file with the sources to an .npz file, for your own "
    "probes: --pooling mean_std (ROI mean | std over frames, N x 2R, the pooler_output), correlation (Fisher-z "
    "connectivity of the output, N x R(R-1)/2: what classified diagnosis best in docs/representations.md) or "
    "latent_mean_std (the last layer's latent channels, N x 2C)."
)
POOLING_NAMES = {
    "mean_std": "ROI mean | std of outputs",
    "correlation": "Fisher-z connectivity of outputs",
    "latent_mean_std": "mean | std of latent channels",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="a MnemoDyn folder with a feature extractor, e.g. a converted mnemodyn-ukb")
    parser.add_argument("files", nargs="+", help="fMRI files (as for parcellate)")
    parser.add_argument("-o", "--output", required=True, help="the .npz file to write")
    parser.add_argument("--repetition-time", type=float, help="TR in seconds, for inputs whose header has none")
    parser.add_argument(
        "--fit-normalization", action="store_true", help="fit robust scaling on these files when the model has none"
    )
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--pooling", choices=tuple(POOLING_NAMES), default="mean_std", help="see the description")


def run(args: argparse.Namespace) -> None:
    from ..apps.file_embeddings import embed_files

    try:
        embeddings = embed_files(
            args.model,
            args.files,
            args.output,
            args.repetition_time,
            args.fit_normalization,
            args.batch_size,
            args.pooling,
        )
    except ValueError as error:
        raise SystemExit(f"error: {error}") from error
    print(
        f"{len(args.files)} recordings -> {args.output}: embeddings {embeddings.shape} ({POOLING_NAMES[args.pooling]})"
    )
