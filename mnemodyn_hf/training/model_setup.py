"""The model a pretraining run starts from: its config (architecture, corpus ROIs and TR, objective) and weights."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from transformers.utils import CONFIG_NAME

from ..configuration_mnemodyn import MnemoDynConfig
from ..modeling_pretraining import MnemoDynForPreTraining
from .arguments import PretrainingArguments
from .corpus import PretrainingCorpus
from .recipe import recipe_model


def model_config_for(args: PretrainingArguments, corpus: PretrainingCorpus) -> MnemoDynConfig:
    """The MnemoDyn config: the architecture of `--init-from` or `--model-config` (the recipe's, `recipe_model`,
    without either), with the corpus's ROIs (count and names)/TR and the objective's options."""
    values: dict[str, Any] = {"context_length": args.window_frames}
    if args.init_from:
        saved = Path(args.init_from) / CONFIG_NAME
        if not saved.is_file():
            raise ValueError(
                f"--init-from {args.init_from}: no {CONFIG_NAME} there; give the model/ folder of a pretraining run "
                "(or any MnemoDynForPreTraining.save_pretrained folder)."
            )
        values.update(json.loads(saved.read_text()))
        if values["num_rois"] != corpus.num_rois:
            raise ValueError(
                f"--init-from {args.init_from} has {values['num_rois']} ROIs but corpus={args.corpus!r} has "
                f"{corpus.num_rois}; continue on a corpus parcellated with the model's atlas, or pretrain from "
                "scratch (--model-config) for this one."
            )
    elif args.model_config:
        values.update(json.loads(Path(args.model_config).read_text()))
    else:
        values.update(recipe_model(args.window_frames))
    for key in ("architectures", "model_type", "transformers_version", "dtype", "torch_dtype"):
        values.pop(key, None)
    values.update(
        num_rois=corpus.num_rois,
        roi_names=list(corpus.feature_extractor.roi_names),  # the atlas the model expects, as its extractor reads it
        pretraining_objective=args.objective,
        mask_ratio=args.mask_ratio,
        mask_span_frames=args.mask_span_frames,
        mask_layout=args.mask_layout,
        mask_input=args.mask_input,
        reconstruction_head=args.reconstruction_head,
        bypass_backbone=args.bypass_backbone,
        noise_std=args.noise_std,
        ema_decay=args.ema_decay,
        consistency_weight=args.consistency_weight,
    )
    if corpus.repetition_time is not None:
        values["repetition_time"] = corpus.repetition_time
    return MnemoDynConfig(**values)


def initial_model(args: PretrainingArguments, corpus: PretrainingCorpus) -> MnemoDynForPreTraining:
    """The model a run starts from: new weights, or those of `--init-from` (its architecture, this run's objective;
    a JEPA target encoder the folder lacks starts as a copy of the loaded backbone)."""
    config = model_config_for(args, corpus)
    if args.init_from is None:
        return MnemoDynForPreTraining(config)
    model, loading = MnemoDynForPreTraining.from_pretrained(args.init_from, config=config, output_loading_info=True)
    if model.target_encoder is not None and any(key.startswith("target_encoder.") for key in loading["missing_keys"]):
        model.objective.init_modules(model)  # jepa: the target encoder starts as a copy of the loaded backbone
    return model


__all__ = ["initial_model", "model_config_for"]
