"""The `model/` folder a pretraining run leaves: weights, config, the fitted feature extractor, the subject split,
the validation metrics and a model card."""

from __future__ import annotations

import json
from pathlib import Path

from accelerate import Accelerator

from ..atomic_files import write_file_atomically
from ..configuration_mnemodyn import MnemoDynConfig
from ..hub import prepare_hub_folder
from ..hub.model_card import PRETRAINING_METRICS_FILE, PRETRAINING_SUBJECTS_FILE, ModelCardFacts
from .arguments import PretrainingArguments
from .corpus import BUILTIN_CORPORA, PretrainingCorpus


def export_model(
    accelerator: Accelerator, model, corpus: PretrainingCorpus, args: PretrainingArguments, metrics: dict[str, float]
) -> Path:
    """Write `<output_dir>/model`: weights (safetensors) and config, the feature extractor fitted on the training
    runs (atlas, TR, robust-scaling statistics), the subject split, the validation metrics and a model card."""
    folder = Path(args.output_dir) / "model"
    accelerator.wait_for_everyone()
    unwrapped = accelerator.unwrap_model(model)
    corpus.feature_extractor.check_model_config(unwrapped.config)
    unwrapped.save_pretrained(
        folder,
        is_main_process=accelerator.is_main_process,
        save_function=accelerator.save,
        state_dict=accelerator.get_state_dict(model),
    )
    if accelerator.is_main_process:
        corpus.feature_extractor.save_pretrained(folder)
        subjects = {
            "train": corpus.train_subjects,
            "validation": corpus.validation_subjects,
            "test": corpus.test_subjects,
            "unused": corpus.unused_subjects,
        }
        write_file_atomically(folder / PRETRAINING_SUBJECTS_FILE, json.dumps(subjects, indent=2))
        write_file_atomically(folder / PRETRAINING_METRICS_FILE, json.dumps(metrics, indent=2))
        prepare_hub_folder(folder, card_facts(args, corpus, unwrapped.config))
    accelerator.wait_for_everyone()
    return folder


def card_facts(args: PretrainingArguments, corpus: PretrainingCorpus, config: MnemoDynConfig) -> ModelCardFacts:
    """What the model card says about a pretraining run (the metrics come from `pretraining_metrics.json`)."""
    subjects = ", ".join(map(str, corpus.train_subjects))
    corpus_name = args.corpus if args.corpus in BUILTIN_CORPORA else Path(args.corpus).name
    return ModelCardFacts(
        model_name=f"MnemoDyn pretrained on {corpus_name} ({args.objective})",
        summary=(
            f"An attention-free MnemoDyn backbone pretrained with `mnemodyn pretrain` ({args.objective} objective, "
            f"{args.max_steps} optimizer steps, {len(corpus.train)} training windows of {args.window_frames} frames, "
            f"seed {args.seed}). `AutoModelForPreTraining` loads the backbone with its reconstruction head; "
            f"`AutoModel` loads the backbone alone."
            + (f" The run started from the weights of `{args.init_from}` (--init-from)." if args.init_from else "")
        ),
        training_data=(
            f"`{args.corpus}`: {len(corpus.train_subjects)} training subjects ({subjects}); "
            f"{len(corpus.validation_subjects)} subjects held out for validation and {len(corpus.test_subjects)} "
            "kept out for testing (split by subject), "
            f"{config.num_rois} ROIs at TR {config.repetition_time:g} s."
        ),
        datasets=[corpus_name],
        pretraining_objective=args.objective,
        repo_id=f"<namespace>/{Path(args.output_dir).resolve().name}",
        tags=["pretraining", f"objective-{args.objective}"],
    )


__all__ = ["card_facts", "export_model"]
