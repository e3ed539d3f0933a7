"""`mnemodyn embed MODEL FILES -o OUT.npz`: fMRI files -> pooled MnemoDyn embeddings."""

from __future__ import annotations

import argparse

from .parcellate import add_denoising_arguments, denoise_option

HELP = "fMRI files -> pooled MnemoDyn embeddings (.npz), through the model's feature extractor"
DESCRIPTION = (
    "Parcellates, resamples and robust-scales each file with the model folder's feature extractor, runs the "
    "backbone in eval mode and saves one pooled vector per file with the sources to an .npz file, for your own "
    "probes: --pooling mean_std (ROI mean | std over frames, N x 2R, the pooler_output), correlation (Fisher-z "
    "connectivity of the output, N x R(R-1)/2: what classified diagnosis best in docs/representations.md) or "
    "latent_mean_std (the last layer's latent channels, N x 2C). The model folder's feature extractor denoises "
    "fMRIPrep images with the strategy it records (--denoise replaces it); a folder of fMRIPrep derivatives stands "
    "for its runs (in --space). OUT.json records the denoising and the frames kept of each file."
)
POOLING_NAMES = {
    "mean_std": "ROI mean | std of outputs",
    "correlation": "Fisher-z connectivity of outputs",
    "latent_mean_std": "mean | std of latent channels",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="a MnemoDyn folder with a feature extractor, e.g. a converted mnemodyn-ukb")
    parser.add_argument("files", nargs="+", help="fMRI files or fMRIPrep derivatives folders (as for parcellate)")
    parser.add_argument("-o", "--output", required=True, help="the .npz file to write")
    parser.add_argument("--repetition-time", type=float, help="TR in seconds, for inputs whose header has none")
    parser.add_argument(
        "--fit-normalization", action="store_true", help="fit robust scaling on these files when the model has none"
    )
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--pooling", choices=tuple(POOLING_NAMES), default="mean_std", help="see the description")
    add_denoising_arguments(parser, "default: the strategy the model's feature extractor records")


def run(args: argparse.Namespace) -> None:
    from ..apps.file_embeddings import embed_files
    from ..apps.roi_tables import input_files

    try:
        files = input_files(args.files, space=args.space)
        embeddings = embed_files(
            args.model,
            files,
            args.output,
            args.repetition_time,
            args.fit_normalization,
            args.batch_size,
            args.pooling,
            denoise=denoise_option(args),
        )
    except (ValueError, ImportError, FileNotFoundError) as error:
        raise SystemExit(f"error: {error}") from error
    print(f"{len(files)} recordings -> {args.output}: embeddings {embeddings.shape} ({POOLING_NAMES[args.pooling]})")
