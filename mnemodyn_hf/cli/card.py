"""`mnemodyn card FOLDER`: write or refresh a folder's model card from its config, facts and reports."""

from __future__ import annotations

import argparse

HELP = "write or refresh a folder's model card (README.md) from its config, facts and metrics"
DESCRIPTION = (
    "Builds README.md with huggingface_hub.ModelCard from config.json, model_card.json (name, summary, training "
    "data, licence), pretraining_metrics.json and downstream_report.json, validates the metadata and model-index, "
    "and (for a folder with weights) adds the modeling code, auto_map and a feature extractor so the folder is "
    "Hub-ready."
)
#: flag -> ModelCardFacts field
FACT_FLAGS = {
    "name": "model_name",
    "summary": "summary",
    "training_data": "training_data",
    "license": "license",
    "base_model": "base_model",
    "repo_id": "repo_id",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", help="a saved MnemoDyn folder, or a card source such as model_cards/mnemodyn-ukb")
    parser.add_argument("--downstream", help="a report.json written by `mnemodyn evaluate`")
    parser.add_argument("--name", help="model name (title and model-index)")
    parser.add_argument("--summary", help="one paragraph: what the model is and how it was trained")
    parser.add_argument("--training-data", help="the training data, with subjects and splits")
    parser.add_argument("--license", help="Hub licence id, e.g. apache-2.0 or cc-by-nc-4.0")
    parser.add_argument("--base-model", help="Hub id of the model this one was fine-tuned from")
    parser.add_argument("--repo-id", help="Hub id shown in the usage snippet")


def run(args: argparse.Namespace) -> None:
    from ..hub import update_model_card

    overrides = {field: getattr(args, flag) for flag, field in FACT_FLAGS.items() if getattr(args, flag) is not None}
    try:
        card = update_model_card(args.folder, downstream=args.downstream, **overrides)
    except ValueError as error:
        flags = {field: "--" + flag.replace("_", "-") for flag, field in FACT_FLAGS.items()}
        message = str(error)
        for field, flag in flags.items():
            message = message.replace(field, flag)
        raise SystemExit(f"error: {message}") from error
    print(f"wrote {card} (metadata and model-index validated)")
