"""Publishing MnemoDyn folders: Hub-ready folders and their upload (`folders`), model cards (`model_card`) and the
authors' checkpoint converter (`convert`)."""

from .folders import (
    AUTO_MAP,
    add_remote_code,
    hub_folder_problems,
    prepare_hub_folder,
    push_folder,
    read_pretraining_subjects,
    update_model_card,
)

__all__ = [
    "AUTO_MAP",
    "add_remote_code",
    "hub_folder_problems",
    "prepare_hub_folder",
    "push_folder",
    "read_pretraining_subjects",
    "update_model_card",
]
