"""Model cards for MnemoDyn folders, built with `huggingface_hub.ModelCard` / `ModelCardData` / `EvalResult`.

A saved MnemoDyn folder carries the facts its card is made of, written by the tool that made it:

    config.json               the architecture (every folder)
    model_card.json           name, summary, training data, licence, caveats (`mnemodyn convert`, `mnemodyn pretrain`)
    pretraining_metrics.json  held-out reconstruction metrics (`mnemodyn pretrain`)
    downstream_report.json    an evaluation report (`mnemodyn evaluate`: methods with CIs, or masked reconstruction)
    pretraining_subjects.json the subject split of the run (`mnemodyn pretrain`)

`write_model_card(folder)` (the `mnemodyn card` command) renders `model_card_template.md` from them into
`README.md`, with the YAML metadata and `model-index` produced by `ModelCardData`, and validates the result.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from ..atlas import SHIPPED_ATLAS_ROIS
from ..atomic_files import write_file_atomically
from ..configuration_mnemodyn import MnemoDynConfig
from ..objectives import OBJECTIVES
from ..preprocessing.denoising import describe_record

TEMPLATE_PATH = Path(__file__).with_name("model_card_template.md")
CARD_FACTS_FILE = "model_card.json"
PRETRAINING_METRICS_FILE = "pretraining_metrics.json"
#: The subjects a pretraining run trained and validated on (`{"train": [...], "validation": [...]}`).
PRETRAINING_SUBJECTS_FILE = "pretraining_subjects.json"
DOWNSTREAM_REPORT_FILE = "downstream_report.json"

#: Hub licence identifiers a MnemoDyn card may use (weights derived from the authors' release are CC BY-NC 4.0).
LICENSES = ("apache-2.0", "mit", "cc-by-4.0", "cc-by-sa-4.0", "cc-by-nc-4.0", "cc-by-nc-sa-4.0", "cc-by-nc-nd-4.0")
REQUIRED_SECTIONS = (
    "Intended use",
    "Training data",
    "Preprocessing",
    "Evaluation",
    "Limitations",
    "Licence",
    "Citation",
)

ATLAS_450 = (
    "the 450-ROI atlas of the reference implementation: Tian S3 subcortex (keys 1-50) + Schaefer-400 7-network "
    "cortex (keys 51-450), on fsLR-32k grayordinates (CIFTI) or MNI152NLin6Asym 2 mm (NIfTI); it ships with "
    "`MnemoDynFeatureExtractor`"
)
GENERAL_LIMITATIONS = (
    "Small downstream cohorts give seed-dependent numbers; compare with the functional-connectivity baseline, "
    "which fMRI foundation models often fail to beat under controlled probing.",
    "Scanner, site, TR and preprocessing differences shift the inputs: resample to the model's TR and fit "
    "normalisation statistics on training subjects only (never on test data).",
    "The authors' downstream scripts leak (oversampling before the split, test-set model selection, dropout left "
    "on at test); their published numbers are not reproduced by, or copied into, this card.",
)
LICENCE_TEXT = {
    "apache-2.0": "Apache-2.0 (weights and the `mnemodyn_hf` code). The training data keep their own terms.",
    "cc-by-nc-4.0": "Weights: CC BY-NC 4.0, as released by the MnemoDyn authors (their repository's LICENSE file "
    "says MIT; ask them before any commercial use). Models trained on UK Biobank also fall under its data-access "
    "policy. The `mnemodyn_hf` code is Apache-2.0.",
}


@dataclass
class ModelCardFacts:
    """What a card says beyond the config and the metrics (stored as `model_card.json`)."""

    model_name: str
    summary: str
    training_data: str
    license: str = "apache-2.0"
    datasets: list[str] = field(default_factory=list)
    base_model: str | None = None
    repo_id: str | None = None
    atlas: str | None = None
    normalisation: str | None = None
    denoising: str | None = None
    pretraining_objective: str | None = None
    limitations: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)

    def __post_init__(self):
        if self.license not in LICENSES:
            raise ValueError(f"license {self.license!r} is not one of the Hub identifiers {LICENSES}.")

    def save(self, folder: str | os.PathLike) -> Path:
        return write_file_atomically(Path(folder) / CARD_FACTS_FILE, json.dumps(dataclasses.asdict(self), indent=2))

    @classmethod
    def load(cls, folder: str | os.PathLike) -> ModelCardFacts:
        path = Path(folder) / CARD_FACTS_FILE
        values = json.loads(path.read_text())
        known = {item.name for item in dataclasses.fields(cls)}
        if unknown := sorted(set(values) - known):
            raise ValueError(f"{path}: unknown key(s) {unknown}; known keys are {sorted(known)}.")
        return cls(**values)


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else None


def _normalisation_text(folder: Path, facts: ModelCardFacts, preprocessor: dict | None) -> str:
    if facts.normalisation:
        return facts.normalisation
    if preprocessor and preprocessor.get("roi_median") is not None:
        subjects = (_read_json(folder / PRETRAINING_SUBJECTS_FILE) or {}).get("train")
        fitted = f"; fitted on {len(subjects)} training subjects" if subjects else ""
        return (
            "robust scaling by the feature extractor with the per-ROI median / IQR stored in "
            f"`preprocessor_config.json` (centre each recording, then (x - ROI median) / ROI IQR{fitted})."
        )
    return (
        "no statistics ship with these weights: fit `MnemoDynFeatureExtractor` (robust scaling) on your "
        "training subjects (`extractor.fit(files)`) and apply it to every split."
    )


def _denoising_text(facts: ModelCardFacts, preprocessor: dict | None) -> str:
    if facts.denoising:
        return facts.denoising
    if preprocessor and preprocessor.get("denoise"):
        return (
            "fMRIPrep confounds regressed out of the parcel means with nilearn's `load_confounds_strategy` preset "
            f"{describe_record(preprocessor['denoise'])} and `signal.clean`, as `preprocessor_config.json` records: "
            "the feature extractor applies it to fMRIPrep images (confounds beside them); denoise new data alike."
        )
    return (
        "not recorded with these weights. Denoise raw fMRIPrep outputs before embedding them (e.g. `mnemodyn embed "
        "--denoise simple`, docs/fmriprep.md): preprocessed BOLD still carries motion and drift."
    )


def downstream_rows(report: dict) -> list[tuple[str, str, str, str]]:
    """(method, metric, "value [low, high]", p) rows of an evaluation report (`mnemodyn evaluate`); a masked
    reconstruction report gives one row per masking and predictor."""
    groups = (
        {"": report["methods"]}
        if "methods" in report
        else {f"{masking} masks: ": result["methods"] for masking, result in report["maskings"].items()}
    )
    rows = []
    for prefix, methods in groups.items():
        for name, result in methods.items():
            low, high = result["ci95"]
            p = "-" if result.get("p_vs_model") is None else f"{result['p_vs_model']:.3f}"
            rows.append((prefix + name, result["metric"], f"{result['value']:.3f} [{low:.3f}, {high:.3f}]", p))
    return rows


def _model_results(report: dict) -> list[tuple[str, str, float]]:
    """(task name, metric, value) of the model's own read-outs in a report, for the model-index."""
    if "methods" in report:
        return [
            (f"{report.get('description', report['task'])} ({name})", result["metric"], result["value"])
            for name, result in report["methods"].items()
            if name.startswith("mnemodyn")
        ]
    return [
        (f"{report.get('description', report['task'])} ({masking} masks)", "r2", result["methods"]["mnemodyn"]["value"])
        for masking, result in report["maskings"].items()
    ]


def _eval_results(facts: ModelCardFacts, pretraining: dict | None, downstream: dict | None) -> list[EvalResult]:
    results = []
    if pretraining and "val/r2_model" in pretraining:
        objective = facts.pretraining_objective or "masked"
        results.append(
            EvalResult(
                task_type=OBJECTIVES[objective].task_type if objective in OBJECTIVES else "masked-reconstruction",
                task_name=f"{objective} reconstruction of held-out subjects",
                dataset_type=(facts.datasets or ["custom"])[0],
                dataset_name=(facts.datasets or ["custom"])[0],
                dataset_split="validation",
                metric_type="r_squared",
                metric_name="R^2 on the scored entries",
                metric_value=round(float(pretraining["val/r2_model"]), 4),
            )
        )
    if downstream:
        dataset = downstream.get("dataset", downstream.get("task", "custom"))
        task_type = (
            "time-series-classification"
            if downstream.get("task_type") == "classification"
            else ("masked-reconstruction" if "maskings" in downstream else "time-series-regression")
        )
        for task_name, metric, value in _model_results(downstream):
            results.append(
                EvalResult(
                    task_type=task_type,
                    task_name=task_name,
                    dataset_type=dataset,
                    dataset_name=dataset,
                    dataset_split="held-out subjects",
                    metric_type=metric,
                    metric_name=metric,
                    metric_value=round(float(value), 4),
                )
            )
    return results


def build_model_card(folder: str | os.PathLike) -> ModelCard:
    """Render the card of a saved MnemoDyn folder from the facts files it holds (see the module docstring)."""
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(
            f"{folder} has no config.json: give a folder written by save_pretrained or mnemodyn convert."
        )
    if not (folder / CARD_FACTS_FILE).is_file():
        raise FileNotFoundError(
            f"{folder} has no {CARD_FACTS_FILE}: `mnemodyn pretrain` and `mnemodyn convert` write it; for another "
            "folder pass --name, --summary and --training-data to `mnemodyn card`."
        )
    facts = ModelCardFacts.load(folder)
    config = MnemoDynConfig.from_pretrained(folder)
    pretraining = _read_json(folder / PRETRAINING_METRICS_FILE)
    downstream = _read_json(folder / DOWNSTREAM_REPORT_FILE)
    results = _eval_results(facts, pretraining, downstream)
    data = ModelCardData(
        license=facts.license,
        library_name="transformers",
        pipeline_tag="feature-extraction",
        tags=["mnemodyn", "fmri", "neuroscience", "time-series", *facts.tags],
        datasets=facts.datasets or None,
        base_model=facts.base_model,
        model_name=facts.model_name if results else None,
        eval_results=results or None,
    )
    from .. import __version__

    preprocessor = _read_json(folder / "preprocessor_config.json")
    return ModelCard.from_template(
        data,
        template_path=str(TEMPLATE_PATH),
        model_name=facts.model_name,
        summary=facts.summary,
        package_version=__version__,
        config=config,
        num_parameters=_backbone_parameters(config),
        repo_id=facts.repo_id or f"<namespace>/{folder.resolve().name}",
        # Hub-ready 450-ROI folders always get one (prepare_hub_folder)
        has_feature_extractor=preprocessor is not None or config.num_rois == SHIPPED_ATLAS_ROIS,
        extractor_fitted=(preprocessor or {}).get("roi_median") is not None,
        example_file="sub-01_bold.dtseries.nii" if config.num_rois == SHIPPED_ATLAS_ROIS else "sub-01_rois.tsv",
        training_data=facts.training_data,
        atlas=facts.atlas
        or (ATLAS_450 if config.num_rois == SHIPPED_ATLAS_ROIS else f"{config.num_rois} ROIs (see training data)"),
        normalisation=_normalisation_text(folder, facts, preprocessor),
        denoising=_denoising_text(facts, preprocessor),
        pretraining_objective=facts.pretraining_objective or "masked",
        pretraining_rows=[
            (k.removeprefix("val/"), float(v))
            for k, v in sorted((pretraining or {}).items())
            if isinstance(v, (int, float)) and math.isfinite(v)
        ],
        downstream_title=(downstream or {}).get("description", "Downstream"),
        downstream_protocol=_protocol_text(downstream or {}),
        downstream_rows=downstream_rows(downstream) if downstream else [],
        limitations=[*facts.limitations, *GENERAL_LIMITATIONS],
        licence_text=LICENCE_TEXT.get(facts.license, f"`{facts.license}`."),
    )


def _protocol_text(report: dict) -> str:
    if "maskings" in report:
        return (
            f"masked reconstruction of {report['windows']} windows of held-out subjects "
            f"{report['held_out_subjects']}, every predictor on the same masks."
        )
    if "methods" in report:
        return f"{report['split']} folds over {report['subjects']} subjects (scored per {report['unit']})."
    return ""


def _backbone_parameters(config: MnemoDynConfig) -> int:
    import torch

    from ..modeling_mnemodyn import MnemoDynModel

    with torch.device("meta"):
        return sum(parameter.numel() for parameter in MnemoDynModel(config).parameters())


def validate_model_card(card: ModelCard | str | os.PathLike) -> ModelCard:
    """Check a card's metadata and body; raise ValueError listing every problem. Accepts a card, its text or a path.

    Checks what the Hub would reject or a reader would miss, offline: YAML front matter that parses, a Hub licence
    id, `library_name: transformers`, a pipeline tag, a `model-index` whose every result has a task type, dataset
    type and name, metric type and a finite numeric value, the card's sections, and no unrendered template syntax.
    """
    if isinstance(card, ModelCard):
        text = card.content
    else:
        text = str(card)
        if "\n" not in text and Path(text).is_file():
            text = Path(text).read_text()
    problems = []
    try:
        parsed = ModelCard(text)
    except ValueError as error:
        raise ValueError(f"the card's YAML metadata does not parse: {error}") from error
    data = parsed.data
    if data.license not in LICENSES:
        problems.append(f"license {data.license!r} is not one of {LICENSES}")
    if data.library_name != "transformers":
        problems.append(f"library_name should be 'transformers', got {data.library_name!r}")
    if not data.pipeline_tag:
        problems.append("pipeline_tag is missing")
    if data.base_model and not re.fullmatch(r"[\w.-]+/[\w.-]+", data.base_model):
        problems.append(f"base_model {data.base_model!r} is not a Hub repo id (namespace/name)")
    for result in data.eval_results or []:
        for name in ("task_type", "dataset_type", "dataset_name", "metric_type"):
            if not getattr(result, name):
                problems.append(f"model-index result without {name}: {result}")
        if not isinstance(result.metric_value, (int, float)) or not math.isfinite(result.metric_value):
            problems.append(f"model-index metric {result.metric_type!r} has no finite value: {result.metric_value!r}")
    if data.eval_results and not data.model_name:
        problems.append("model-index needs model_name")
    for section in REQUIRED_SECTIONS:
        if not re.search(rf"^## {re.escape(section)}\b", parsed.text, flags=re.MULTILINE):
            problems.append(f"section '## {section}' is missing")
    if "{{" in parsed.text or "{%" in parsed.text:
        problems.append("unrendered template syntax ({{ or {%) in the body")
    if problems:
        raise ValueError("invalid model card:\n  - " + "\n  - ".join(problems))
    return parsed


def write_model_card(folder: str | os.PathLike) -> Path:
    """Build, validate and atomically write `<folder>/README.md`; returns its path."""
    card = validate_model_card(build_model_card(folder))
    return write_file_atomically(Path(folder) / "README.md", str(card))


__all__ = ["ModelCardFacts", "build_model_card", "validate_model_card", "write_model_card"]
