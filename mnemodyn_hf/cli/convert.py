"""`mnemodyn convert CKPT OUTPUT_DIR`: the authors' Lightning checkpoint -> a Hub-ready folder."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "convert the authors' Lightning checkpoint to a Hub-ready Hugging Face folder"
DESCRIPTION = (
    "Convert the authors' MnemoDyn Lightning checkpoint to a Hub-ready Hugging Face folder: config.json (with "
    "auto_map) + model.safetensors + the modeling code + a feature extractor with the 450-ROI atlas + a model card. "
    "`AutoModel.from_pretrained(OUTPUT_DIR)` loads it after `import mnemodyn_hf` (or with trust_remote_code=True)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="the reference .ckpt file (read with weights_only=True)")
    parser.add_argument("output_dir", help="folder to write, e.g. mnemodyn-ukb")
    parser.add_argument("--repetition-time", type=float, default=None, help="TR in seconds the weights were trained at")
    parser.add_argument("--card", help="model_card.json with the card facts (e.g. model_cards/mnemodyn-ukb/)")


def run(args: argparse.Namespace) -> None:
    from ..hub import prepare_hub_folder
    from ..hub.convert import ReferenceCheckpointError, convert_reference_checkpoint, converted_card_facts
    from ..hub.model_card import ModelCardFacts

    overrides = {} if args.repetition_time is None else {"repetition_time": args.repetition_time}
    try:
        model = convert_reference_checkpoint(args.checkpoint, args.output_dir, **overrides)
    except ReferenceCheckpointError as error:
        raise SystemExit(f"error: {error}") from error
    if args.card:
        facts = ModelCardFacts.load(Path(args.card).parent)
    else:
        facts = converted_card_facts(args.checkpoint, args.output_dir)
    prepare_hub_folder(args.output_dir, facts)
    parameters = sum(p.numel() for p in model.parameters())
    print(
        f"wrote {args.output_dir} ({model.config.num_layers} layers, {parameters:,} parameters, "
        "reference_compatible, model card, Hub-ready)"
    )
