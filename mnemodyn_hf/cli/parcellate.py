"""`mnemodyn parcellate FILES -o DIR`: NIfTI / CIFTI (or fMRIPrep derivatives folders) -> ROI time-series tables."""

from __future__ import annotations

import argparse
import json

HELP = "NIfTI / CIFTI fMRI -> 450-ROI time-series tables (TSV with ROI-name header + JSON sidecar)"
DESCRIPTION = (
    "Parcel means of each file in the 450-ROI atlas (CIFTI dense series on fsLR-32k grayordinates, 4-D NIfTI on any "
    "MNI grid), denoised with --denoise STRATEGY (nilearn's fMRIPrep strategies, with the confounds beside each "
    "image), resampled to the model TR (0.735 s) unless --no-resample; not normalised. A folder of fMRIPrep "
    "derivatives stands for its runs (in --space). Writes <output-dir>/<name>_rois.tsv (frames x ROIs) and "
    "<name>_rois.json (RepetitionTime, sources, denoising, frames kept); nothing is written when a file fails."
)
#: `--denoise` values: nilearn's preset strategies, and "none".
DENOISE_CHOICES = ("simple", "scrubbing", "compcor", "ica_aroma", "none")


def add_denoising_arguments(parser: argparse.ArgumentParser, default_help: str) -> None:
    """`--denoise`, `--denoise-option` and `--space`, shared by parcellate and embed."""
    parser.add_argument(
        "--denoise",
        choices=DENOISE_CHOICES,
        help="regress fMRIPrep confounds out with this nilearn load_confounds_strategy preset ('none': no "
        f"denoising); {default_help}",
    )
    parser.add_argument(
        "--denoise-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a load_confounds_strategy parameter of the --denoise preset, e.g. motion=basic or fd_threshold=0.3",
    )
    parser.add_argument(
        "--space", help="template space of the runs to read from fMRIPrep derivatives folders (e.g. MNI152NLin6Asym)"
    )


def denoise_option(args: argparse.Namespace) -> str | dict | bool | None:
    """`--denoise` and its `--denoise-option`s as the library takes them: a strategy name or record, False for
    'none', None when not given."""
    if args.denoise is None or args.denoise == "none":
        if args.denoise_option:
            raise SystemExit("error: --denoise-option sets a parameter of a --denoise strategy; give the strategy.")
        return None if args.denoise is None else False
    record = {"denoise_strategy": args.denoise}
    for option in args.denoise_option:
        key, separator, value = option.partition("=")
        if not separator:
            raise SystemExit(f"error: --denoise-option {option!r} is not KEY=VALUE (e.g. motion=basic).")
        try:
            record[key] = json.loads(value)  # numbers, true/false, null
        except json.JSONDecodeError:
            record[key] = value  # words such as basic or full
    return record if len(record) > 1 else args.denoise


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "files", nargs="+", help=".dtseries.nii, .nii/.nii.gz (4-D), ptseries, ROI tables or fMRIPrep folders"
    )
    parser.add_argument("-o", "--output-dir", required=True, help="folder for the tables")
    parser.add_argument("--repetition-time", type=float, help="TR in seconds, for inputs whose header has none")
    parser.add_argument("--no-resample", action="store_true", help="keep the input TR")
    parser.add_argument("--extractor", help="a folder with a preprocessor_config.json (another atlas or TR)")
    add_denoising_arguments(parser, "default: the --extractor's strategy, else none")


def run(args: argparse.Namespace) -> None:
    import numpy as np

    from ..apps.roi_tables import input_files, write_roi_tables
    from ..feature_extraction_mnemodyn import MnemoDynFeatureExtractor
    from ..preprocessing.denoising import denoise_record

    extractor = (
        MnemoDynFeatureExtractor.from_pretrained(args.extractor)
        if args.extractor
        else MnemoDynFeatureExtractor(do_normalize=False)
    )
    try:
        setting = denoise_option(args)
        if setting is not None:
            extractor.denoise = denoise_record(setting or None)
        files = input_files(args.files, space=args.space)
        tables = write_roi_tables(
            files, args.output_dir, extractor, repetition_time=args.repetition_time, resample=not args.no_resample
        )
    except (ValueError, ImportError, FileNotFoundError) as error:
        raise SystemExit(f"error: {error}") from error
    for source, table in zip(files, tables, strict=True):
        values = np.loadtxt(table, skiprows=1, ndmin=2)
        print(f"{source} -> {table} ({values.shape[0]} frames x {values.shape[1]} ROIs)")
