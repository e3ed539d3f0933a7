"""The recommended recipe: what `mnemodyn pretrain --corpus DIR --output-dir OUT` uses for every option left out,
read from the corpus (its repetition time, run lengths and subject count).

| option | from the corpus |
|---|---|
| `window_frames` | the longest of 256 / 128 / 64 / 32 frames that three quarters of the runs hold (`auto_window`) |
| `window_stride` | half the window |
| `mask_span_frames` | about 6 s at the corpus TR (`auto_span`; 30 frames when the TR is unknown) |
| `validation_fraction` | a tenth of the subjects, at least 2 |
| `per_device_batch_size` | 2,048 frames per batch, at most 16 windows: 8 windows of 256 frames, 16 of shorter ones |
| architecture | `RECIPE_MODEL`, with `wavelet_levels` from the window (`recipe_model`) |

and fixed: mixed masks (per-ROI, whole-frame or forecast per window) hiding half the frames, read by the backbone
as the line between each ROI's nearest visible frames (`mask_input="interpolate"`), `RECIPE_STEPS` AdamW steps at a
peak learning rate of 3e-3 after 50 warm-up steps. An option given on the command line or in `--config`
always wins. docs/representations.md says how the recipe was chosen (on validation subjects) and what it costs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from .arguments import PretrainingArguments

#: Seconds a masked span lasts by default: BOLD at one frame predicts the next few seconds, not a minute (see the
#: autocorrelations in docs/representations.md); 30-frame spans at TR 2 s hide a minute no predictor can fill.
DEFAULT_SPAN_SECONDS = 6.0
#: Window lengths the recipe picks from (powers of two keep wavelet levels and regions aligned).
WINDOW_CHOICES = (256, 128, 64, 32)
#: Frames per batch (windows per batch = this / window, at most `MAX_BATCH_WINDOWS`).
BATCH_FRAMES = 2048
MAX_BATCH_WINDOWS = 16
#: The recipe's architecture: about 0.74 M parameters at 94 ROIs (256-frame windows), trainable on a laptop CPU in
#: minutes.
RECIPE_MODEL = {"num_layers": 2, "projection_size": 64, "latent_channels": 32, "num_coarse_layers": 2}
#: Optimizer steps of the recipe.
RECIPE_STEPS = 1000
#: The recipe's values of options that do not depend on the corpus.
FIXED_OPTIONS = {
    "mask_layout": "mixed",
    "mask_ratio": 0.5,
    "mask_input": "interpolate",
    "learning_rate": 3e-3,
    "warmup_steps": 50,
}


def auto_window(lengths: Sequence[int]) -> int:
    """The default window: the longest of `WINDOW_CHOICES` that at least three quarters of the runs hold."""
    quartile = float(np.percentile(lengths, 25))
    return next((window for window in WINDOW_CHOICES if window <= quartile), WINDOW_CHOICES[-1])


def auto_span(repetition_time: float | None) -> int:
    """The default masked span: `DEFAULT_SPAN_SECONDS` at the corpus TR (30 frames when the TR is unknown)."""
    return 30 if repetition_time is None else max(1, round(DEFAULT_SPAN_SECONDS / repetition_time))


def auto_validation_fraction(num_subjects: int) -> float:
    """A tenth of the subjects for validation, at least 2 (as a fraction of `num_subjects`)."""
    return max(2, round(0.1 * num_subjects)) / num_subjects


def recipe_model(window_frames: int) -> dict[str, Any]:
    """`RECIPE_MODEL` with 4 wavelet levels for windows of 128 frames or more, fewer for shorter ones (the coarsest
    band keeps at least 4 frames)."""
    levels = min(4, max(1, int(np.log2(window_frames)) - 3))
    return {**RECIPE_MODEL, "wavelet_levels": levels}


def resolve_recipe(
    args: PretrainingArguments, lengths: Sequence[int], repetition_time: float | None, num_subjects: int
) -> PretrainingArguments:
    """`args` with every option left as None set from the corpus (the module docstring's table)."""
    window = args.window_frames or auto_window(lengths)
    resolved: dict[str, Any] = {
        "window_frames": window,
        "window_stride": max(1, window // 2),
        "mask_span_frames": auto_span(repetition_time),
        "validation_fraction": auto_validation_fraction(num_subjects),
        "per_device_batch_size": max(1, min(MAX_BATCH_WINDOWS, BATCH_FRAMES // window)),
        "max_steps": RECIPE_STEPS,
        **FIXED_OPTIONS,
    }
    chosen = {name: value for name, value in resolved.items() if getattr(args, name) is None}
    return dataclasses.replace(args, **chosen)


def recipe_choices(given: PretrainingArguments, resolved: PretrainingArguments) -> str:
    """One line naming the options the recipe filled in (those None in `given`), or "" when none was."""
    chosen = [
        f"{field.name}={getattr(resolved, field.name)}"
        for field in dataclasses.fields(given)
        if getattr(given, field.name) is None and getattr(resolved, field.name) is not None
    ]
    return f"Recipe for this corpus (training.recipe): {', '.join(chosen)}" if chosen else ""


__all__ = [
    "BATCH_FRAMES",
    "DEFAULT_SPAN_SECONDS",
    "FIXED_OPTIONS",
    "MAX_BATCH_WINDOWS",
    "RECIPE_MODEL",
    "RECIPE_STEPS",
    "WINDOW_CHOICES",
    "auto_span",
    "auto_validation_fraction",
    "auto_window",
    "recipe_choices",
    "recipe_model",
    "resolve_recipe",
]
