"""fMRI files -> pooled MnemoDyn embeddings, through the model folder's feature extractor, saved as .npz."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..atomic_files import write_file_atomically
from ..evaluation.embeddings import POOLINGS, embed
from ..feature_extraction_mnemodyn import MnemoDynFeatureExtractor
from ..modeling_mnemodyn import MnemoDynModel


def embed_files(
    model_folder: str | os.PathLike,
    files: Sequence[str | os.PathLike],
    output: str | os.PathLike,
    repetition_time: float | None = None,
    fit_normalization: bool = False,
    batch_size: int = 8,
    pooling: str = "mean_std",
) -> np.ndarray:
    """Parcellate, resample and scale each file with the folder's feature extractor, run the backbone in eval mode
    and write one vector per file, pooled by `pooling` (one of `evaluation.embed`'s POOLINGS: `"mean_std"` (N, 2R)
    ROI mean | std over frames, `"correlation"` (N, R(R-1)/2) Fisher-z connectivity of the output,
    `"latent_mean_std"` (N, 2C)), with the sources, to the .npz `output`.

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
    if extractor.roi_median is None:
        if not fit_normalization:
            raise ValueError(
                f"{folder} carries no normalisation statistics (its feature extractor was never fitted). Pass "
                "--fit-normalization (fit_normalization=True) to fit robust scaling on these files: use it for an "
                "unlabelled set or your training subjects, never to include test subjects in a supervised protocol."
            )
        extractor.fit(files, repetition_time=repetition_time)
    series = [extractor([path], repetition_time=repetition_time)["input_values"][0] for path in files]
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
    return embeddings


__all__ = ["embed_files"]
