import json
import shutil
from pathlib import Path

import pytest
from huggingface_hub import ModelCard

from mnemodyn_hf.hub.model_card import ModelCardFacts, build_model_card, validate_model_card, write_model_card

MODEL_CARDS = Path(__file__).resolve().parents[2] / "model_cards"
CARD_SOURCES = sorted(path.parent for path in MODEL_CARDS.glob("*/model_card.json"))


def test_the_shipped_card_sources_include_ukb_and_hcp():
    assert {path.name for path in CARD_SOURCES} >= {"mnemodyn-ukb", "mnemodyn-hcp"}
    assert (MODEL_CARDS / "template.md").read_text() == (
        Path(__file__).resolve().parents[2] / "mnemodyn_hf" / "hub" / "model_card_template.md"
    ).read_text()


@pytest.mark.parametrize("source", CARD_SOURCES, ids=lambda path: path.name)
def test_every_shipped_card_validates_and_is_what_its_sources_render(source):
    committed = (source / "README.md").read_text()
    card = validate_model_card(committed)
    assert card.data.library_name == "transformers" and card.data.license in ("cc-by-nc-4.0", "apache-2.0")
    assert str(build_model_card(source)) == committed, f"run `mnemodyn card {source.relative_to(MODEL_CARDS.parent)}`"


def test_ukb_card_states_licence_caveats_and_no_copied_numbers():
    card = ModelCard.load(MODEL_CARDS / "mnemodyn-ukb" / "README.md")
    assert card.data.license == "cc-by-nc-4.0" and card.data.eval_results is None
    for caveat in ("Identity-like pretraining", "Licences conflict", "148,237,012", "UK Biobank"):
        assert caveat in card.text


def test_hcp_card_reports_measured_reconstruction_beside_the_baselines():
    card = ModelCard.load(MODEL_CARDS / "mnemodyn-hcp" / "README.md")
    values = [result.metric_value for result in card.data.eval_results if result.dataset_name == "hcp-reconstruction"]
    report = json.loads((MODEL_CARDS / "mnemodyn-hcp" / "downstream_report.json").read_text())
    expected = [round(result["methods"]["mnemodyn"]["value"], 4) for result in report["maskings"].values()]
    assert values == pytest.approx(expected, abs=1e-4)
    for result in report["maskings"].values():
        strongest = result["strongest_baseline"]
        assert f"{result['methods'][strongest]['value']:.3f}" in card.text


def test_validation_names_every_problem():
    good = (MODEL_CARDS / "mnemodyn-ukb" / "README.md").read_text()
    broken = good.replace("license: cc-by-nc-4.0", "license: free-for-all").replace("## Limitations", "## Caveats")
    with pytest.raises(ValueError, match=r"(?s)license 'free-for-all'.*section '## Limitations' is missing"):
        validate_model_card(broken)
    with pytest.raises(ValueError, match="unrendered template"):
        validate_model_card(good + "\n{{ summary }}\n")
    metric = {
        "model-index": [
            {
                "name": "x",
                "results": [
                    {
                        "task": {"type": "t"},
                        "dataset": {"type": "d", "name": "d"},
                        "metrics": [{"type": "auc", "value": "high"}],
                    }
                ],
            }
        ]
    }
    import yaml

    header, body = good.split("---\n", 2)[1:]
    with pytest.raises(ValueError, match="no finite value"):
        validate_model_card(f"---\n{header}{yaml.safe_dump(metric)}---\n{body}")


def test_facts_are_checked_and_cards_need_them(tmp_path):
    with pytest.raises(ValueError, match="not one of the Hub identifiers"):
        ModelCardFacts(model_name="m", summary="s", training_data="t", license="gpl-ish")
    shutil.copy(MODEL_CARDS / "mnemodyn-ukb" / "config.json", tmp_path / "config.json")
    with pytest.raises(FileNotFoundError, match="has no model_card.json"):
        build_model_card(tmp_path)
    ModelCardFacts(model_name="m", summary="s", training_data="t").save(tmp_path)
    path = write_model_card(tmp_path)
    assert validate_model_card(path).data.license == "apache-2.0"


def test_the_card_states_the_denoising_the_weights_expect(tmp_path):
    folder = shutil.copytree(MODEL_CARDS / "mnemodyn-hcp", tmp_path / "model")
    assert "- Denoising: not recorded with these weights. Denoise raw fMRIPrep outputs" in str(build_model_card(folder))
    preprocessor = json.loads((folder / "preprocessor_config.json").read_text())
    preprocessor["denoise"] = {"denoise_strategy": "scrubbing", "fd_threshold": 0.3}
    (folder / "preprocessor_config.json").write_text(json.dumps(preprocessor))
    text = str(validate_model_card(build_model_card(folder)))
    assert "`load_confounds_strategy` preset 'scrubbing' (fd_threshold=0.3) and `signal.clean`" in text


def test_the_pretraining_result_takes_its_task_type_from_the_objective(tmp_path, monkeypatch):
    from mnemodyn_hf.objectives import OBJECTIVES
    from tests.test_objectives import ShiftObjective

    monkeypatch.setitem(OBJECTIVES, "shift", ShiftObjective)
    shutil.copy(MODEL_CARDS / "mnemodyn-ukb" / "config.json", tmp_path / "config.json")
    (tmp_path / "pretraining_metrics.json").write_text(json.dumps({"val/r2_model": 0.5}))
    for objective, task_type in (
        ("masked", "masked-reconstruction"),
        ("denoising", "denoising"),
        ("shift", "forecasting"),
    ):
        ModelCardFacts(model_name="m", summary="s", training_data="t", pretraining_objective=objective).save(tmp_path)
        (result,) = build_model_card(tmp_path).data.eval_results
        assert (result.task_type, result.task_name) == (task_type, f"{objective} reconstruction of held-out subjects")
