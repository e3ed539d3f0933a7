"""`pipeline("fmri-embedding", model=FOLDER_OR_REPO)`: fMRI in, one MnemoDyn embedding per recording out."""

from __future__ import annotations

from typing import Any

import numpy as np
from transformers import AutoModel, Pipeline
from transformers.pipelines import PIPELINE_REGISTRY

#: The task name the pipeline is registered under (on `import mnemodyn_hf`).
EMBEDDING_TASK = "fmri-embedding"


class MnemoDynEmbeddingPipeline(Pipeline):
    """Pooled MnemoDyn embeddings through the model folder's feature extractor.

    Each input (a NIfTI / CIFTI path, an ROI table, or a (T, R) array) is parcellated, resampled and scaled by the
    folder's `MnemoDynFeatureExtractor`, run through the backbone in eval mode, and returned as its pooled output:
    a (2R,) float32 array, the ROI mean | standard deviation over frames. A list of inputs gives a list of arrays.

    Example:

    ```python
    >>> import mnemodyn_hf  # registers the task
    >>> from transformers import pipeline
    >>> embedder = pipeline("fmri-embedding", model="mnemodyn-hcp")
    >>> embedder(["sub-01_rois.tsv", "sub-02_rois.tsv"])  # [(188,), (188,)] arrays
    ```

    Keyword arguments of the call: `repetition_time` (seconds, for inputs whose header has none). A feature extractor
    that disagrees with the model's ROI count or TR is refused when the pipeline is built.
    """

    _load_feature_extractor = True
    _load_tokenizer = False
    _load_image_processor = False
    _load_processor = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.feature_extractor is not None:
            self.feature_extractor.check_model_config(self.model.config)

    def _sanitize_parameters(self, repetition_time: float | None = None, **kwargs):
        if kwargs:
            raise ValueError(f"{EMBEDDING_TASK} takes only repetition_time=<seconds>; got {sorted(kwargs)}.")
        preprocess = {} if repetition_time is None else {"repetition_time": repetition_time}
        return preprocess, {}, {}

    def preprocess(self, inputs: Any, repetition_time: float | None = None) -> dict:
        if self.feature_extractor is None:
            raise ValueError(
                f"{EMBEDDING_TASK} needs the model folder's feature extractor (preprocessor_config.json); this one "
                "has none. Save one beside the weights (MnemoDynFeatureExtractor(...).save_pretrained(folder))."
            )
        return self.feature_extractor([inputs], repetition_time=repetition_time, return_tensors="pt")

    def _forward(self, model_inputs: dict) -> Any:
        return self.model(**model_inputs)

    def postprocess(self, model_outputs: Any) -> np.ndarray:
        return model_outputs.pooler_output[0].float().cpu().numpy().copy()


def register_embedding_pipeline() -> None:
    """Register `fmri-embedding` with transformers' pipeline registry (idempotent)."""
    if EMBEDDING_TASK not in PIPELINE_REGISTRY.get_supported_tasks():
        PIPELINE_REGISTRY.register_pipeline(
            EMBEDDING_TASK, pipeline_class=MnemoDynEmbeddingPipeline, pt_model=AutoModel, type="multimodal"
        )


__all__ = ["EMBEDDING_TASK", "MnemoDynEmbeddingPipeline", "register_embedding_pipeline"]
