"""`mnemodyn parcellate FILES -o DIR`: NIfTI / CIFTI -> ROI time-series tables."""

from __future__ import annotations

import argparse

HELP = "NIfTI / CIFTI fMRI -> 450-ROI time-series tables (TSV with ROI-name header + JSON sidecar)"
DESCRIPTION = (
    "Parcel means of each file in the 450-ROI atlas (CIFTI dense series on fsLR-32k grayordinates, 4-D NIfTI on any "
    "MNI grid), resampled to the model TR (0.735 s) unless --no-resample; not normalised. Writes "
    "<output-dir>/<name>_rois.tsv (frames x ROIs) and <name>_rois.json (RepetitionTime, sources)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", help=".dtseries.nii, .nii/.nii.gz (4-D), ptseries or ROI tables")
    parser.add_argument("-o", "--output-dir", required=True, help="folder for the tables")
    parser.add_argument("--repetition-time", type=float, help="TR in seconds, for inputs whose header has none")
    parser.add_argument("--no-resample", action="store_true", help="keep the input TR")
    parser.add_argument("--extractor", help="a folder with a preprocessor_config.json (another atlas or TR)")


def run(args: argparse.Namespace) -> None:
    import numpy as np

    from ..apps.roi_tables import write_roi_tables
    from ..feature_extraction_mnemodyn import MnemoDynFeatureExtractor

    extractor = MnemoDynFeatureExtractor.from_pretrained(args.extractor) if args.extractor else None
    tables = write_roi_tables(
        args.files, args.output_dir, extractor, repetition_time=args.repetition_time, resample=not args.no_resample
    )
    for source, table in zip(args.files, tables, strict=True):
        values = np.loadtxt(table, skiprows=1, ndmin=2)
        print(f"{source} -> {table} ({values.shape[0]} frames x {values.shape[1]} ROIs)")
