"""Pretraining MnemoDyn with Accelerate, in the order a run goes:

`arguments` (the options) -> `corpus` (split by subject, feature extractor fitted on the training runs, windows)
-> `model_setup` (the initial model) -> `loop` (Accelerate training, with `tracking`, atomic `checkpoints` and
`validation`) -> `export` (the Hub-ready `model/` folder).

    mnemodyn pretrain --output-dir runs/masked --max-steps 2000                                 # one process
    ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2 -m mnemodyn_hf.training ...  # CPU DDP
    accelerate launch --multi_gpu --num_processes 8 -m mnemodyn_hf.training --config pretrain.json
"""

from .arguments import PretrainingArguments, add_arguments, arguments_from_namespace, parse_arguments
from .corpus import BUILTIN_CORPORA, PretrainingCorpus, prepare_corpus
from .loop import evaluate_initial_model, pretrain

__all__ = [
    "BUILTIN_CORPORA",
    "PretrainingArguments",
    "PretrainingCorpus",
    "add_arguments",
    "arguments_from_namespace",
    "evaluate_initial_model",
    "parse_arguments",
    "prepare_corpus",
    "pretrain",
]
