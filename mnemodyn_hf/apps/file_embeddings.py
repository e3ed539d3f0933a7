"""fMRI files -> pooled MnemoDyn embeddings, through the model folder's feature extractor, saved as .npz."""

from __future__ import annotations

import io
import json
import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atomic_files import write_file_atomically
from ..evaluation.embeddings import POOLINGS, embed
from ..feature_extraction_mnemodyn import MnemoDynFeatureExtractor
from ..modeling_mnemodyn import MnemoDynModel
from ..preprocessing.denoising import denoise_record, describe_record
from .roi_tables import denoising_sidecar

#: fMRIPrep's preprocessed BOLD, which still holds motion and drift until it is denoised.
FMRIPREP_BOLD = re.compile(r"_desc-preproc_bold\.nii(\.gz)?$|_space-[^_]+(_den-[^_]+)?_bold\.dtseries\.nii$")


def embed_files(
    model_folder: str | os.PathLike,
    files: Sequence[str | os.PathLike],
    output: str | os.PathLike,
    repetition_time: float | None = None,
    fit_normalization: bool = False,
    batch_size: int = 8,
    pooling: str = "mean_std",
    denoise: str | dict[str, Any] | bool | None = None,
) -> np.ndarray:
    """Parcellate, resample and scale each file with the folder's feature extractor, run the backbone in eval mode
    and write one vector per file, pooled by `pooling` (one of `evaluation.embed`'s POOLINGS: `"mean_std"` (N, 2R)
    ROI mean | std over frames, `"correlation"` (N, R(R-1)/2) Fisher-z connectivity of the output,
    `"latent_mean_std"` (N, 2C)), with the sources, to the .npz `output`, and the denoising and frames kept of each
    file to its JSON sidecar (`output` with `.json`).

    `denoise` None applies the folder's extractor's strategy (the denoising its weights expect), False denoises
    nothing, and a strategy name or record (see `MnemoDynFeatureExtractor`) replaces the folder's, with a warning
    when it differs.

    Raises:
        ValueError: an unknown `pooling`, the folder has no feature extractor (it cannot read files), or its
            extractor carries no robust-scaling statistics and `fit_normalization` is False.
    """
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}.")
    folder = Path(model_folder)
    if not (folder / "preprocessor_config.json").is_file():
        raise ValueError(
            f"{folder} has no feature extractor (preprocessor_config.json), so its atlas is unknown and files cannot "
            "be read for it. Save one with the model (MnemoDynFeatureExtractor(...).save_pretrained(folder)), or "
            "call mnemodyn_hf.evaluation.embed(model, series) on parcellated series in Python."
        )
    model = MnemoDynModel.from_pretrained(folder)
    extractor = MnemoDynFeatureExtractor.from_pretrained(folder)
    extractor.check_model_config(model.config, model_name=str(folder))
    _choose_denoising(extractor, denoise, folder, files)
    if extractor.roi_median is None:
        if not fit_normalization:
            raise ValueError(
                f"{folder} carries no normalisation statistics (its feature extractor was never fitted). Pass "
                "--fit-normalization (fit_normalization=True) to fit robust scaling on these files: use it for an "
                "unlabelled set or your training subjects, never to include test subjects in a supervised protocol."
            )
        extractor.fit(files, repetition_time=repetition_time)
    series, runs = [], []
    for index, path in enumerate(files):
        values, frames = extractor.roi_series(path, repetition_time, index=index)
        series.append(extractor(values, repetition_time=extractor.target_repetition_time)["input_values"][0])
        runs.append({"Source": str(path), **denoising_sidecar(extractor, frames)})
    with torch.no_grad():
        embeddings = embed(model, series, batch_size=batch_size, pooling=pooling)
    buffer = io.BytesIO()
    np.savez(
        buffer,
        embeddings=embeddings,
        sources=np.asarray([str(path) for path in files]),
        frames=np.asarray([len(s) for s in series]),
        pooling=np.asarray(pooling),
        model=np.asarray(str(model_folder)),
    )
    write_file_atomically(output, buffer.getvalue())
    sidecar = {"Model": str(model_folder), "Pooling": pooling, "Denoising": extractor.denoise, "Runs": runs}
    write_file_atomically(Path(output).with_suffix(".json"), json.dumps(sidecar, indent=2))
    return embeddings


def _choose_denoising(extractor: MnemoDynFeatureExtractor, denoise: Any, folder: Path, files: Sequence) -> None:
    """Set the extractor's denoising from `denoise` (see `embed_files`), warning where it departs from what the
    weights expect or leaves fMRIPrep images raw."""
    expected = extractor.denoise
    if denoise is not None:
        extractor.denoise = None if denoise is False else denoise_record(denoise)
        if extractor.denoise != expected and expected is not None:
            warnings.warn(
                f"{folder}'s feature extractor records denoising {describe_record(expected)}, the denoising its "
                f"weights expect; embedding with {describe_record(extractor.denoise)} instead.",
                stacklevel=3,
            )
    raw = [Path(file).name for file in files if FMRIPREP_BOLD.search(str(file)) and extractor.denoise is None]
    if raw:
        warnings.warn(
            f"{len(raw)} input(s) are fMRIPrep preprocessed BOLD (e.g. {raw[0]}), which still carries motion and "
            "drift, and nothing denoises them: pass --denoise STRATEGY (denoise='simple', ...) as the model's "
            "pretraining data were denoised.",
            stacklevel=3,
        )


__all__ = ["embed_files"]
