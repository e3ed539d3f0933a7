"""Hub-ready MnemoDyn folders and their upload.

A Hub-ready folder holds everything `from_pretrained` needs, with or without `import mnemodyn_hf`:

    config.json                 with `auto_map` (AutoConfig, AutoModel, AutoModelForPreTraining,
                                AutoModelForSequenceClassification -> the modeling files below)
    model.safetensors           weights (no pickles: *.bin / *.ckpt / *.pt are refused)
    *.py                        the modeling code, for `trust_remote_code=True` without the package
    preprocessor_config.json    the feature extractor, its atlas inside (needs `import mnemodyn_hf`)
    README.md                   a model card that validates (`mnemodyn_hf.hub.model_card`)
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

from huggingface_hub import HfApi
from transformers.dynamic_module_utils import custom_object_save

from ..atlas import SHIPPED_ATLAS_ROIS
from ..atomic_files import write_file_atomically
from ..feature_extraction_mnemodyn import MnemoDynFeatureExtractor
from .model_card import (
    CARD_FACTS_FILE,
    DOWNSTREAM_REPORT_FILE,
    PRETRAINING_SUBJECTS_FILE,
    ModelCardFacts,
    validate_model_card,
    write_model_card,
)

#: Auto class -> "module.Class" of the code copied into a Hub-ready folder.
AUTO_MAP = {
    "AutoConfig": "configuration_mnemodyn.MnemoDynConfig",
    "AutoModel": "modeling_mnemodyn.MnemoDynModel",
    "AutoModelForPreTraining": "modeling_pretraining.MnemoDynForPreTraining",
    "AutoModelForSequenceClassification": "modeling_heads.MnemoDynForSequenceClassification",
}
PICKLE_SUFFIXES = (".bin", ".ckpt", ".pt", ".pth", ".pkl")
#: What a model repo holds; `push_folder` uploads only top-level files of these kinds (never run outputs, cohort
#: tables or checkpoints kept in subfolders).
UPLOADED_SUFFIXES = (".json", ".safetensors", ".py", ".md")


def read_pretraining_subjects(folder: str | os.PathLike) -> dict[str, list[str]] | None:
    """The `PRETRAINING_SUBJECTS_FILE` of a `mnemodyn pretrain` model folder (`{"train", "validation", "test"}`
    subject lists), or None when it has none."""
    path = Path(folder) / PRETRAINING_SUBJECTS_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def add_remote_code(folder: str | os.PathLike) -> dict[str, str]:
    """Copy the modeling code into `folder` and write `auto_map` into its config.json (atomically)."""
    from ..modeling_heads import MnemoDynForSequenceClassification
    from ..modeling_pretraining import MnemoDynForPreTraining

    folder = Path(folder)
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(
            f"{folder} has no config.json: give a folder written by save_pretrained or mnemodyn convert."
        )
    for cls in (MnemoDynForPreTraining, MnemoDynForSequenceClassification):  # each copies its relative imports too
        custom_object_save(cls, folder)
    config = json.loads(config_path.read_text())
    config["auto_map"] = dict(AUTO_MAP)
    write_file_atomically(config_path, json.dumps(config, indent=2, sort_keys=True) + "\n")
    return config["auto_map"]


def prepare_hub_folder(folder: str | os.PathLike, facts: ModelCardFacts | None = None) -> Path:
    """Complete a saved MnemoDyn folder for the Hub: card facts (when given), the modeling code and `auto_map`, a
    feature extractor with the shipped atlas (not normalising: no statistics) for 450-ROI models that have none,
    and a validated `README.md`."""
    folder = Path(folder)
    if facts is not None:
        facts.save(folder)
    add_remote_code(folder)
    config = json.loads((folder / "config.json").read_text())
    if config["num_rois"] == SHIPPED_ATLAS_ROIS and not (folder / "preprocessor_config.json").is_file():
        # the shipped atlas and the model's TR; no statistics ship, so it does not normalise until fitted
        MnemoDynFeatureExtractor.for_rois(config["num_rois"], config["repetition_time"]).save_pretrained(folder)
    return write_model_card(folder)


def update_model_card(folder: str | os.PathLike, downstream: str | os.PathLike | None = None, **overrides) -> Path:
    """Write or refresh `folder`'s model card: its card facts with `overrides` (ModelCardFacts fields), the
    evaluation report `downstream` copied in when given; a folder with weights is made Hub-ready as well.

    Raises:
        ValueError: the folder has no card facts yet and `overrides` lack a name, summary or training data.
    """
    folder = Path(folder)
    if (folder / CARD_FACTS_FILE).is_file():
        facts = dataclasses.replace(ModelCardFacts.load(folder), **overrides)  # re-checked by __post_init__
    else:
        missing = [key for key in ("model_name", "summary", "training_data") if key not in overrides]
        if missing:
            raise ValueError(f"{folder} has no {CARD_FACTS_FILE}; give {', '.join(missing)} to describe the model.")
        facts = ModelCardFacts(**overrides)
    if downstream and Path(downstream).resolve() != (folder / DOWNSTREAM_REPORT_FILE).resolve():
        shutil.copyfile(downstream, folder / DOWNSTREAM_REPORT_FILE)
    if (folder / "model.safetensors").is_file():  # a model folder: make it Hub-ready as well
        return prepare_hub_folder(folder, facts)
    facts.save(folder)  # a card-source folder (config.json + facts, e.g. model_cards/mnemodyn-ukb)
    return write_model_card(folder)


def hub_folder_problems(folder: str | os.PathLike) -> list[str]:
    """What keeps `folder` from being uploaded as a MnemoDyn model repo (an empty list when it is ready)."""
    folder = Path(folder)
    if not folder.is_dir():
        return [f"{folder} is not a folder"]
    problems = []
    config_path = folder / "config.json"
    if not config_path.is_file():
        problems.append("config.json is missing (write the folder with save_pretrained or mnemodyn convert)")
    else:
        config = json.loads(config_path.read_text())
        if config.get("model_type") != "mnemodyn":
            problems.append(f"config.json has model_type {config.get('model_type')!r}, not 'mnemodyn'")
        if config.get("auto_map") != AUTO_MAP:
            problems.append(
                "config.json has no auto_map for the modeling code (run `mnemodyn card` or add_remote_code)"
            )
        for entry in AUTO_MAP.values():
            if not (folder / f"{entry.split('.')[0]}.py").is_file():
                problems.append(f"{entry.split('.')[0]}.py (remote code named in auto_map) is missing")
    if not (folder / "model.safetensors").is_file() and not (folder / "model.safetensors.index.json").is_file():
        problems.append("model.safetensors is missing")
    pickles = sorted(path.name for path in folder.iterdir() if path.suffix in PICKLE_SUFFIXES)
    if pickles:
        problems.append(f"pickled files {pickles} must not be uploaded: weights go in safetensors")
    card = folder / "README.md"
    if not card.is_file():
        problems.append("README.md (model card) is missing: run `mnemodyn card FOLDER`")
    else:
        try:
            validate_model_card(card)
        except ValueError as error:
            problems.append(f"README.md: {error}")
    return problems


def uploaded_files(folder: str | os.PathLike) -> list[str]:
    """The top-level files of `folder` a model repo needs (see `UPLOADED_SUFFIXES`), sorted."""
    return sorted(
        path.name for path in Path(folder).iterdir() if path.is_file() and path.name.endswith(UPLOADED_SUFFIXES)
    )


def push_folder(
    folder: str | os.PathLike,
    repo_id: str,
    private: bool = False,
    token: str | None = None,
    commit_message: str = "Upload MnemoDyn with mnemodyn_hf",
) -> str:
    """Check `folder` is Hub-ready, create `repo_id` if needed and upload its model files (`uploaded_files`: never
    its subfolders); returns the commit URL.

    Needs a token (`hf auth login`, `HF_TOKEN`, or `token=`). Nothing is uploaded from a folder that fails the check.
    """
    problems = hub_folder_problems(folder)
    if problems:
        raise ValueError(f"{folder} is not ready for the Hub:\n  - " + "\n  - ".join(problems))
    if "/" not in repo_id:
        raise ValueError(f"repo id {repo_id!r} needs a namespace: '<user or org>/{repo_id}'.")
    files = uploaded_files(folder)
    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    commit = api.upload_folder(
        repo_id=repo_id, repo_type="model", folder_path=str(folder), allow_patterns=files, commit_message=commit_message
    )
    return str(getattr(commit, "commit_url", commit))


__all__ = [
    "AUTO_MAP",
    "add_remote_code",
    "hub_folder_problems",
    "prepare_hub_folder",
    "push_folder",
    "read_pretraining_subjects",
    "update_model_card",
    "uploaded_files",
]
