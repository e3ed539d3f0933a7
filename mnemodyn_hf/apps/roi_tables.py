"""fMRI files -> ROI time-series tables (TSV with the ROI names as header + a BIDS-style JSON sidecar)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from tqdm.auto import tqdm

from ..atomic_files import write_file_atomically
from ..feature_extraction_mnemodyn import MnemoDynFeatureExtractor


def write_roi_tables(
    files: Sequence[str | os.PathLike],
    output_dir: str | os.PathLike,
    extractor: MnemoDynFeatureExtractor | None = None,
    repetition_time: float | None = None,
    resample: bool = True,
) -> list[Path]:
    """Parcel means of each file through `extractor` (default: the shipped 450-ROI atlas at TR 0.735 s), resampled
    to its TR unless `resample=False`, never normalised; writes `<output_dir>/<name>_rois.tsv` (frames x ROIs) and
    `<name>_rois.json` (RepetitionTime, sources, atlas). Returns the tables."""
    extractor = extractor or MnemoDynFeatureExtractor(do_normalize=False)
    extractor.do_normalize = False  # tables hold parcel means; scaling belongs to the model's statistics
    extractor.do_resample = resample
    tables = []
    for path in tqdm(files, desc="Parcellating", unit="file"):
        series = extractor([path], repetition_time=repetition_time)["input_values"][0]
        stem = Path(path).name.split(".")[0]
        rows = ["\t".join(extractor.roi_names)] + ["\t".join(f"{value:.7g}" for value in frame) for frame in series]
        table = write_file_atomically(Path(output_dir) / f"{stem}_rois.tsv", "\n".join(rows) + "\n")
        sidecar = {
            "Sources": [str(path)],
            "RepetitionTime": extractor.target_repetition_time if resample else repetition_time,
            "NumberOfVolumes": int(series.shape[0]),
            "Atlas": sorted(file.name for file in extractor.atlas.files.values()),
            "Resampled": resample,
            "Normalized": False,
        }
        write_file_atomically(table.with_suffix(".json"), json.dumps(sidecar, indent=2))
        tables.append(table)
    return tables


__all__ = ["write_roi_tables"]
