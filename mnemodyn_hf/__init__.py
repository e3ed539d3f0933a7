"""mnemodyn_hf: MnemoDyn, an attention-free foundation model for resting-state fMRI, for Hugging Face.

Importing the package registers the model with the transformers Auto classes (`AutoConfig`, `AutoModel`,
`AutoModelForPreTraining`, `AutoFeatureExtractor`), so folders written by `save_pretrained` or by the
reference-checkpoint converter load without `trust_remote_code`, and registers `pipeline("fmri-embedding")`.
"""

from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    AutoModel,
    AutoModelForPreTraining,
    AutoModelForSequenceClassification,
)

from .configuration_mnemodyn import MnemoDynConfig
from .feature_extraction_mnemodyn import MnemoDynFeatureExtractor
from .modeling_heads import MnemoDynForRegression, MnemoDynForSequenceClassification, MnemoDynRegressionOutput
from .modeling_mnemodyn import MnemoDynModel, MnemoDynModelOutput, MnemoDynPreTrainedModel
from .modeling_pretraining import MnemoDynForPreTraining, MnemoDynForPreTrainingOutput
from .pipeline_mnemodyn import MnemoDynEmbeddingPipeline, register_embedding_pipeline

AutoConfig.register(MnemoDynConfig.model_type, MnemoDynConfig, exist_ok=True)
AutoModel.register(MnemoDynConfig, MnemoDynModel, exist_ok=True)
AutoModelForSequenceClassification.register(MnemoDynConfig, MnemoDynForSequenceClassification, exist_ok=True)
AutoModelForPreTraining.register(MnemoDynConfig, MnemoDynForPreTraining, exist_ok=True)
AutoFeatureExtractor.register(MnemoDynConfig, MnemoDynFeatureExtractor, exist_ok=True)
register_embedding_pipeline()  # pipeline("fmri-embedding", model=...)

__version__ = "0.1.0"

__all__ = [
    "MnemoDynConfig",
    "MnemoDynEmbeddingPipeline",
    "MnemoDynFeatureExtractor",
    "MnemoDynForRegression",
    "MnemoDynForSequenceClassification",
    "MnemoDynForPreTraining",
    "MnemoDynForPreTrainingOutput",
    "MnemoDynModel",
    "MnemoDynModelOutput",
    "MnemoDynPreTrainedModel",
    "MnemoDynRegressionOutput",
]
